"""Supervisor admin for tenants, scoped to the user's tenants (tenants/admin_scope.py):
tenants and members, credentials, users and what ending their access does, the catalog.
Importing the modules registers them; the site's name and its mark for an empty value are set
here, before any page is drawn ("View site" is set by exports/admin/, beside the dashboard it opens)."""
from django.contrib import admin

admin.site.site_header = "sparkexport"
admin.site.site_title = "sparkexport"
admin.site.index_title = "Supervisor admin"
admin.site.empty_value_display = "—"

from tenants.admin import catalog, credentials, tenants, users  # noqa: E402, F401
