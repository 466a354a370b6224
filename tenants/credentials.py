"""Whether a credential may still act for its tenant: one rule for API keys, OAuth clients and
admin sessions, applied to every request and every signed download link.

An OAuth client acts as a user: it is refused as soon as that user is inactive or no longer
a member of the client's tenant (a deleted user takes the client with it).
"""
import hmac

from django.contrib.auth import get_user_model
from django.db.models import OuterRef, QuerySet, Subquery

from tenants.models import ApiKey, Group, Membership, OAuthClient, Permission

KEY, CLIENT, SESSION = "key", "client", "session"
SESSION_HASH_CHARS = 16


def credential_id(kind: str, pk) -> str:
    """The stable name of one credential: what Idempotency-Keys and signed links are bound to."""
    return f"{kind}:{pk}"


def session_credential_id(user) -> str:
    """An admin user's sessions as one credential: the user and their session auth hash,
    which a password change replaces (ending every session of theirs, and their links)."""
    return credential_id(SESSION, f"{user.pk}.{user.get_session_auth_hash()[:SESSION_HASH_CHARS]}")


def with_membership_group(queryset: QuerySet, client_path: str = "") -> QuerySet:
    """Annotate `membership_group`: the group of the client's user in the client's tenant, or None."""
    prefix = f"{client_path}__" if client_path else ""
    group = Membership.objects.filter(
        tenant=OuterRef(f"{prefix}tenant"), user=OuterRef(f"{prefix}user")
    ).values("group")[:1]
    return queryset.annotate(membership_group=Subquery(group))


def oauth_client_refusal(client: OAuthClient, membership_group: str | None) -> str | None:
    """Why the client may not act now, or None while its user is active and a member."""
    user = client.user
    if not user.is_active:
        return f"user {user.get_username()} is inactive"
    if membership_group is None:
        return f"user {user.get_username()} is not a member of {client.tenant.slug}"
    return None


def oauth_client_get_live(application_id: int, tenant_slug: str | None = None) -> tuple[OAuthClient | None, str | None]:
    """(the client of this OAuth application with its membership group, why it is refused)."""
    clients = OAuthClient.objects.select_related("tenant", "user", "application")
    if tenant_slug is not None:
        clients = clients.filter(tenant__slug=tenant_slug)
    client = with_membership_group(clients).filter(application_id=application_id).first()
    if client is None:
        return None, "no OAuth client of this tenant"
    return client, oauth_client_refusal(client, client.membership_group)


def _session_is_live(tenant_slug: str, ident: str) -> bool:
    user_pk, _, auth_hash = ident.partition(".")
    if not user_pk.isdigit():
        return False
    user = get_user_model().objects.filter(pk=user_pk, is_active=True, is_staff=True).first()
    if user is None or not hmac.compare_digest(user.get_session_auth_hash()[:SESSION_HASH_CHARS], auth_hash):
        return False
    return user.is_superuser or Membership.objects.filter(
        user=user, tenant__slug=tenant_slug, group=Group.SUPERVISOR
    ).exists()


def _key_is_live(tenant_slug: str, pk: str) -> bool:
    api_key = ApiKey.objects.filter(pk=pk, tenant__slug=tenant_slug, revoked_at__isnull=True).first()
    return api_key is not None and api_key.allows(Permission.EXPORTS)


def credential_is_live(tenant_slug: str, credential: str) -> bool:
    """Whether the named credential may still act in the tenant, and download its packages
    (one or two indexed queries)."""
    kind, _, ident = credential.partition(":")
    if kind == SESSION:
        return _session_is_live(tenant_slug, ident)
    if not ident.isdigit():
        return False
    if kind == KEY:
        return _key_is_live(tenant_slug, ident)
    if kind == CLIENT:
        client, refusal = oauth_client_get_live(int(ident), tenant_slug)
        return client is not None and refusal is None
    return False
