"""Supervisor admin for tenants, scoped to the user's tenants (tenants/admin_scope.py):
tenants and members, credentials, users and what ending their access does, the catalog.
Importing the modules registers them."""

from tenants.admin import catalog, credentials, tenants, users  # noqa: F401
