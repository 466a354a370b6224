"""Signed download links: a URL that works without credentials until it expires."""
from django.conf import settings
from django.core import signing

SALT = "exports.download"


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def download_token(tenant_slug: str, job_id) -> str:
    """A token binding the link to this tenant and job; it carries its signing time."""
    signed = _signer().sign(f"{tenant_slug}:{job_id}")
    return signed.split(":", 2)[2]


def download_token_valid(tenant_slug: str, job_id, token: str) -> bool:
    """True while the token was made for this tenant and job and is younger than the TTL."""
    try:
        _signer().unsign(f"{tenant_slug}:{job_id}:{token}", max_age=settings.EXPORT_DOWNLOAD_LINK_TTL)
    except signing.BadSignature:  # includes SignatureExpired
        return False
    return True
