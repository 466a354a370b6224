"""Supervisor admin for export and import jobs; importing the modules registers them."""

from exports.admin import export_jobs, queues  # noqa: F401
from exports.imports import admin as import_jobs  # noqa: F401
