"""What a write to tenants, API keys or the catalog changes for status snapshots.

Receivers of the model signals rather than calls in the services: a snapshot must follow
every write, the admin's and cascading deletes included. Writes through `update()` send no
signal; the services that use it call these functions themselves.
"""
from django.db.models.signals import post_delete, post_save

from sparkexport import snapshots
from tenants.models import ApiKey, Folder, Service, ServiceVersion, Tenant

# Export status documents show service and folder names of versions in any tenant: one scope.
CATALOG_SCOPE = "catalog"


def tenant_scope(slug: str) -> str:
    """The tenant row and its API keys: what authenticating a key in this tenant reads."""
    return f"tenant:{slug}"


def tenant_slug_of(instance) -> str | None:
    """The slug of `instance.tenant`, without a query when the tenant is already loaded."""
    if "tenant" in instance._state.fields_cache:
        return instance.tenant.slug
    return Tenant.objects.filter(pk=instance.tenant_id).values_list("slug", flat=True).first()


def tenant_credentials_changed(tenant_slug: str | None) -> None:
    if tenant_slug:
        snapshots.scopes_changed(tenant_scope(tenant_slug))


def _tenant_written(sender, instance, **kwargs):
    tenant_credentials_changed(instance.slug)


def api_key_changed(api_key: ApiKey) -> None:
    if snapshots.writes_enabled():
        tenant_credentials_changed(tenant_slug_of(api_key))


def _api_key_written(sender, instance, **kwargs):
    api_key_changed(instance)


def _catalog_written(sender, instance, **kwargs):
    snapshots.scopes_changed(CATALOG_SCOPE)


def connect() -> None:
    for name, signal in (("save", post_save), ("delete", post_delete)):
        signal.connect(_tenant_written, sender=Tenant, dispatch_uid=f"snapshots-tenant-{name}")
        signal.connect(_api_key_written, sender=ApiKey, dispatch_uid=f"snapshots-apikey-{name}")
        for model in (Folder, Service, ServiceVersion):
            signal.connect(_catalog_written, sender=model, dispatch_uid=f"snapshots-{model.__name__}-{name}")
