"""Signed download links: a URL that works without credentials until it expires or the
credential it was issued to is revoked, whichever comes first (as object stores' signed URLs
do). The link names that credential, under the signature."""
from django.conf import settings
from django.core import signing
from django.urls import reverse

from tenants.credentials import credential_is_live

SALT = "exports.download"


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def download_token(tenant_slug: str, job_id, credential_id: str) -> str:
    """`<credential>:<timestamp>:<signature>`, signed over the tenant, the job and the credential
    that read the status (tenants.credentials names it)."""
    signed = _signer().sign(f"{tenant_slug}:{job_id}:{credential_id}")
    return signed.split(":", 2)[2]


def download_token_valid(tenant_slug: str, job_id, token: str) -> bool:
    """True while the token was made for this tenant and job, is younger than the TTL, and the
    credential it names may still act in the tenant."""
    try:
        value = _signer().unsign(f"{tenant_slug}:{job_id}:{token}", max_age=settings.EXPORT_DOWNLOAD_LINK_TTL)
    except signing.BadSignature:  # includes SignatureExpired
        return False
    credential = value.split(":", 2)[2]
    return credential_is_live(tenant_slug, credential)


def download_path(tenant_slug: str, job_id, file_name: str, credential_id: str) -> str:
    """The path of a package's signed link, issued to one credential."""
    path = reverse("export-file", kwargs={"tenant": tenant_slug, "job_id": job_id, "file_name": file_name})
    return f"{path}?token={download_token(tenant_slug, job_id, credential_id)}"
