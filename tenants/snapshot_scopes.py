"""The snapshot scopes of tenants, credentials and the catalog, and which writes change them
(sparkexport/snapshots/writes.py announces every write of these models)."""
from sparkexport.snapshots.writes import feeds_snapshots
from tenants.models import ApiKey, Folder, Service, ServiceVersion, Tenant, VersionXcall

# Export status documents show service and folder names of versions in any tenant: one scope.
CATALOG_SCOPE = "catalog"


def tenant_scope(slug: str) -> str:
    """The tenant row and its API keys: what authenticating a key in this tenant reads."""
    return f"tenant:{slug}"


def connect() -> None:
    feeds_snapshots(Tenant, lookups=("slug",), scopes_of=lambda row: [tenant_scope(row["slug"])])
    feeds_snapshots(
        ApiKey,
        lookups=("tenant__slug",),
        scopes_of=lambda row: [tenant_scope(row["tenant__slug"])],
        # Recorded at most once a minute per key; no snapshot shows it.
        ignored_fields=("last_used_at",),
    )
    for model in (Folder, Service, ServiceVersion, VersionXcall):
        feeds_snapshots(model, scopes_of=lambda row: [CATALOG_SCOPE])
