"""The two ways a Spark client authenticates: an API key, or an OAuth2 bearer token."""
from datetime import timedelta

from django.utils import timezone
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from sparkexport.api.throttling import AuthFailureLimiter
from tenants.selectors import api_key_get_by_secret

# Recording every use would cost a write per request; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiKeyAuthentication(BaseAuthentication):
    """`x-synthetic-key: <key>` (with `x-tenant-name`); answers (None, ApiKey)."""

    def authenticate(self, request):
        key = request.headers.get("x-synthetic-key")
        if key is None:
            return None
        api_key = api_key_get_by_secret(key)
        if api_key is None:
            AuthFailureLimiter().record_failure(request)
            raise AuthenticationFailed(
                "The API key in x-synthetic-key is unknown or revoked. "
                "Ask your tenant's operator for a key (manage.py apikey_create)."
            )
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_PRECISION:
            type(api_key).objects.filter(pk=api_key.pk).update(last_used_at=now)
        return (None, api_key)

    def authenticate_header(self, request):
        return "x-synthetic-key"


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
            AuthFailureLimiter().record_failure(request)
            raise AuthenticationFailed(
                "The bearer token is unknown or expired. Fetch a new one with the "
                "client-credentials grant at POST /auth/realms/{tenant}/protocol/openid-connect/token."
            )
        user, token = result
        if user is None and token.application_id:
            user = token.application.user
        return (user, token)
