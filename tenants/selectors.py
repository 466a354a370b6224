"""Reads of tenants and credentials."""
import hashlib
import hmac

from django.db.models import Q

from tenants.models import ApiKey, ServiceVersion, Tenant, VersionXcall
from tenants.xcall_resolution import CatalogIndex, CatalogVersion


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_get_by_secret(key: str) -> ApiKey | None:
    """The live API key whose secret is `key` (format `<prefix>.<secret>`), or None."""
    prefix, _, secret = key.partition(".")
    if not prefix or not secret:
        return None
    api_key = (
        ApiKey.objects.select_related("tenant")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .order_by()  # prefix is unique: the model's ordering would only add a join
        .first()
    )
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, hash_secret(secret)):
        return None
    return api_key


def tenant_get(slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug).first()


def version_dependencies(version: ServiceVersion) -> list[tuple[VersionXcall, CatalogVersion | None]]:
    """The version's Xcalls, each with the version it reaches now (None: dynamic or unresolved)."""
    calls = list(version.xcalls.all())
    index = CatalogIndex.of_tenant(version.service.folder.tenant, [c.reference for c in calls if not c.dynamic])
    return [(call, None if call.dynamic else index.resolve(call.reference)) for call in calls]


def version_dependents(version: ServiceVersion) -> list[VersionXcall]:
    """The Xcalls of the tenant's versions that reach this version now."""
    service = version.service
    named = Q(reference__contains=service.name) | Q(reference__icontains=str(service.service_id))
    candidates = list(
        VersionXcall.objects.filter(named | Q(reference__icontains=str(version.version_id)), dynamic=False)
        .filter(version__service__folder__tenant_id=service.folder.tenant_id)
        .select_related("version__service__folder")
    )
    index = CatalogIndex.of_tenant(service.folder.tenant, [c.reference for c in candidates])
    return [c for c in candidates if (reached := index.resolve(c.reference)) and reached.version_id == version.version_id]
