"""Supervisor admin for export and import jobs; importing the modules registers them."""
from django.contrib import admin
from django.urls import reverse_lazy

from exports.admin import export_jobs, queues  # noqa: F401

# "View site" opens the supervisor dashboard: what a supervisor comes for (jobs in progress
# against the limit, failures, workers), one click from every admin page. The site has no
# page of its own at "/", and the API docs are for the pipelines' authors.
admin.site.site_url = reverse_lazy("admin:exports_dashboard")

# The import jobs' admin (exports/imports/admin.py) builds on exports.admin.jobs, so it is
# registered from ExportsConfig.ready(), after this package is complete.
