"""Supervisor admin for export and import jobs; importing the modules registers them."""

from exports.admin import export_jobs, queues  # noqa: F401

# The import jobs' admin (exports/imports/admin.py) builds on exports.admin.jobs, so it is
# registered from ExportsConfig.ready(), after this package is complete.
