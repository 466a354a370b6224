"""Who is calling, for which tenant: resolved once per request, before any view code runs."""
from oauth2_provider.models import AccessToken
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission

from sparkexport.errors import Forbidden
from tenants.callers import Caller
from tenants.credentials import CLIENT, KEY, credential_id
from tenants.models import ApiKey, Group


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
        credential_id=credential_id(KEY, api_key.pk),
    )


def caller_from_token(slug: str, token: AccessToken) -> Caller:
    """The caller behind a bearer token that TenantOAuth2Validator found live: its client,
    user and membership group came with the token."""
    client = token.application.tenant_client
    if client.tenant.slug != slug:
        raise _forbidden_tenant(slug)
    return Caller(
        tenant=client.tenant,
        label=client.user.get_username(),
        user=client.user,
        is_supervisor=token.membership_group == Group.SUPERVISOR,
        credential=f"OAuth client '{client.application.name}' ({client.application.client_id})",
        credential_id=credential_id(CLIENT, client.application_id),
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
            caller = caller_from_token(slug, request.auth)
        request.caller = caller
        return True
