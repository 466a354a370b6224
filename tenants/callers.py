"""Who acts on a tenant's jobs: an API key, an OAuth client's user, an admin session or an
operator's command."""
from dataclasses import dataclass

from tenants.models import ApiKey, Tenant


@dataclass(frozen=True)
class Caller:
    """The principal of a request or command, resolved once."""

    tenant: Tenant
    label: str
    user: object = None
    api_key: ApiKey | None = None
    is_supervisor: bool = False
    # For people: which key, client or session acted, as the audit trail shows it.
    credential: str = ""
    # For the code: the same credential as tenants.credentials names it ("key:12", "client:7",
    # "session:3.<hash>"); empty for an operator's command. Idempotency-Keys, rate limits and
    # signed links belong to it.
    credential_id: str = ""
