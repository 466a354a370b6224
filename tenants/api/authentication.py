"""The two ways a Spark client authenticates: an API key, or an OAuth2 bearer token."""
import hashlib
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from sparkexport import snapshots
from tenants.api.snapshot_reads import request_snapshot_put, request_tokens, request_tokens_start
from sparkexport.api.throttling import AuthFailureLimiter
from tenants.models import ApiKey
from tenants.selectors import api_key_get_by_secret
from tenants.snapshot_scopes import tenant_scope

# Recording every use would cost a write per request; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiKeyAuthentication(BaseAuthentication):
    """`x-synthetic-key: <key>` (with `x-tenant-name`); answers (None, ApiKey)."""

    def authenticate(self, request):
        key = request.META.get("HTTP_X_SYNTHETIC_KEY")  # not request.headers: polls skip building it
        if key is None:
            return None
        api_key = _api_key(request, key)
        if api_key is None:
            AuthFailureLimiter().record_failure(request, "api_key")
            raise AuthenticationFailed(
                "The API key in x-synthetic-key is unknown or revoked. "
                "Ask your tenant's operator for a key (manage.py apikey_create)."
            )
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_PRECISION:
            type(api_key).objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now  # the instance may be a snapshot that later requests reuse
        return (None, api_key)

    def authenticate_header(self, request):
        return "x-synthetic-key"


def _api_key(request, key: str) -> ApiKey | None:
    """The live key for `key`; from a snapshot when the view reads snapshots, the tenant's token
    is unchanged since the key was last read from the database, and that read is at most
    CREDENTIAL_MAX_AGE old (the bound on a revocation whatever happens to Redis)."""
    if getattr(request, "snapshot_tokens", None) is None:
        return api_key_get_by_secret(key)
    slug = request.parser_context["kwargs"]["tenant"]
    scope = tenant_scope(slug)
    tokens = request_tokens(request, scope)
    snapshot_key = ("api-key", hashlib.sha256(key.encode()).digest())
    if tokens and (api_key := snapshots.store.get(snapshot_key, tokens)):
        return api_key
    api_key = api_key_get_by_secret(key)
    if api_key is not None and api_key.tenant.slug == slug:
        if tokens:
            request_snapshot_put(request, snapshot_key, tokens, api_key, credential=True)
        else:
            request_tokens_start(request, scope)
    return api_key


class BearerTokenAuthentication(OAuth2Authentication):
    """`Authorization: Bearer <token>` from the client-credentials grant; answers (user, AccessToken).

    An unknown or expired token is a 401, which makes the cspark SDK fetch a new token
    and retry (it first sends the literal `Bearer None`).
    """

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            return None
        result = super().authenticate(request)
        if result is None:
            AuthFailureLimiter().record_failure(request, "bearer_token")
            refusal = getattr(request, "oauth2_error", {}).get("error_description", "")
            raise AuthenticationFailed(
                (f"{refusal} " if refusal else "The bearer token is unknown or expired. ")
                + "Fetch a new one with the client-credentials grant at "
                "POST /auth/realms/{tenant}/protocol/openid-connect/token."
            )
        _, token = result
        return (token.application.tenant_client.user, token)


# How the two schemes appear in the OpenAPI schema (drf-spectacular finds these subclasses).


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "x-synthetic-key",
            "description": "A tenant API key; send x-tenant-name: {tenant} with it.",
        }


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.authentication.BearerTokenAuthentication"
    name = "OAuth2ClientCredentials"

    def get_security_definition(self, auto_schema):
        return {
            "type": "oauth2",
            "description": "Token from POST /auth/realms/{tenant}/protocol/openid-connect/token.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/auth/realms/{tenant}/protocol/openid-connect/token",
                    "scopes": {},
                }
            },
        }
