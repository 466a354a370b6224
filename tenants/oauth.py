"""The Keycloak-shaped token endpoint the cspark SDK calls for client credentials."""
import base64
from urllib.parse import unquote_plus

from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.views import TokenView

from tenants.models import OAuthClient


@method_decorator(csrf_exempt, name="dispatch")
class TenantTokenView(TokenView):
    """POST /auth/realms/{tenant}/protocol/openid-connect/token (client_credentials only).

    The SDK sends `Authorization: Bearer None` with this request; only HTTP Basic is read
    from that header, so it is ignored. A client of another tenant is refused here, before
    django-oauth-toolkit issues anything.
    """

    def post(self, request, tenant):
        if request.POST.get("grant_type") != "client_credentials":
            return _oauth_error(
                "unsupported_grant_type", "Only grant_type=client_credentials is supported.", 400
            )
        client_id = _client_id(request)
        if not OAuthClient.objects.filter(application__client_id=client_id, tenant__slug=tenant).exists():
            return _oauth_error(
                "invalid_client", f"Unknown client_id for realm '{tenant}'.", 401
            )
        return super().post(request)


def _client_id(request) -> str:
    """The client_id django-oauth-toolkit will authenticate: HTTP Basic first, then the form."""
    header = request.headers.get("Authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return ""
        return unquote_plus(decoded.partition(":")[0])
    return request.POST.get("client_id", "")


def _oauth_error(error: str, description: str, status: int) -> JsonResponse:
    return JsonResponse({"error": error, "error_description": description}, status=status)
