"""Reads of tenants and credentials."""
import hashlib
import hmac

from tenants.models import ApiKey, Tenant


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
