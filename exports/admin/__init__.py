"""Supervisor admin for export and import jobs; importing the modules registers them."""

from exports.admin import export_jobs, import_jobs, queues  # noqa: F401
