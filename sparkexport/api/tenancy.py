"""Who is calling, for which tenant: resolved once per request, before any view code runs."""
from dataclasses import dataclass

from oauth2_provider.models import AccessToken
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission

from sparkexport.api.errors import Forbidden
from tenants.models import ApiKey, Tenant
from tenants.selectors import membership_get, oauth_client_get


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of a tenant API request."""

    tenant: Tenant
    label: str
    user: object = None
    api_key: ApiKey | None = None
    is_supervisor: bool = False
    credential: str = ""  # for the audit trail: which key, client or session acted


def _forbidden_tenant(slug: str) -> Forbidden:
    return Forbidden(
        f"These credentials do not belong to tenant '{slug}'. Use credentials issued for "
        "this tenant, or call the URL of the tenant they belong to."
    )


def caller_from_api_key(request, slug: str, api_key: ApiKey, required: tuple[str, ...]) -> Caller:
    header_tenant = request.META.get("HTTP_X_TENANT_NAME")
    if api_key.tenant.slug != slug or (header_tenant and header_tenant != slug):
        raise _forbidden_tenant(slug)
    if not header_tenant:
        raise NotAuthenticated(
            "API keys must be sent together with the x-tenant-name header naming the tenant."
        )
    if required and not api_key.allows(*required):
        raise Forbidden(
            f"The API key '{api_key.name}' lacks the feature permission for this API: "
            f"grant it one of {', '.join(required)}."
        )
    return Caller(
        tenant=api_key.tenant,
        label=api_key.name,
        api_key=api_key,
        is_supervisor=api_key.is_supervisor,
        credential=f"API key '{api_key.name}' ({api_key.prefix})",
    )


def caller_from_token(slug: str, user, token: AccessToken) -> Caller:
    client = oauth_client_get(token.application_id)
    if client is None or client.tenant.slug != slug:
        raise _forbidden_tenant(slug)
    user = user or client.user
    membership = membership_get(client.tenant, user)
    if membership is None:
        raise Forbidden(
            f"User '{user}' behind this OAuth client is not a member of tenant '{slug}'. "
            f"Add it with manage.py member_add {slug} {user}."
        )
    return Caller(
        tenant=client.tenant,
        label=user.get_username(),
        user=user,
        is_supervisor=membership.is_supervisor,
        credential=f"OAuth client '{client.application.name}' ({client.application.client_id})",
    )


class IsTenantCaller(BasePermission):
    """Authenticated for the tenant in the URL, with the view's feature permission.

    Sets `request.caller`. The view names its API-key permissions in
    `required_permissions`.
    """

    def has_permission(self, request, view):
        if request.auth is None:
            raise NotAuthenticated()
        slug = view.kwargs["tenant"]
        required = getattr(view, "required_permissions", ())
        if isinstance(request.auth, ApiKey):
            caller = caller_from_api_key(request, slug, request.auth, required)
        else:
            caller = caller_from_token(slug, request.user, request.auth)
        request.caller = caller
        return True
