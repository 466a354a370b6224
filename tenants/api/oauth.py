"""The Keycloak-shaped token endpoint the cspark SDK calls for client credentials, and the
validator that binds every token to its realm and to a user who may still act."""
import hashlib

from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import AccessToken
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.views import TokenView

from tenants.credentials import oauth_client_get_live, oauth_client_refusal, with_membership_group

# The realm of the token URL, handed to the validator through the request's META, which
# django-oauth-toolkit passes on as the oauthlib request's headers.
REALM_META = "SPARKEXPORT_REALM"


class TenantOAuth2Validator(OAuth2Validator):
    """django-oauth-toolkit's validator, plus two rules.

    Issuing: whatever the toolkit authenticated (HTTP Basic, or the form when Basic fails or
    is absent) must be a client of the URL's realm whose user is active and a member.
    Using: a bearer token is refused as soon as its client's user may no longer act; the
    token, its client, the user and the membership are read in one query.
    """

    def authenticate_client(self, request, *args, **kwargs):
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        realm = request.headers.get(REALM_META)
        if not realm:
            return False
        client, refusal = oauth_client_get_live(request.client.pk, realm)
        return client is not None and refusal is None

    def _load_access_token(self, token):
        # The toolkit's lookup by checksum, with the client, its user and membership joined.
        tokens = AccessToken.objects.select_related(
            "application__tenant_client__tenant", "application__tenant_client__user", "user"
        )
        checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
        return with_membership_group(tokens, "application__tenant_client").filter(token_checksum=checksum).first()

    def validate_bearer_token(self, token, scopes, request):
        if not super().validate_bearer_token(token, scopes, request):
            return False
        access_token = request.access_token
        client = getattr(access_token.application, "tenant_client", None)
        refusal = "no OAuth client" if client is None else oauth_client_refusal(client, access_token.membership_group)
        if refusal:
            request.oauth2_error = {"error": "invalid_token", "error_description": f"The client is refused: {refusal}."}
            return False
        return True


@method_decorator(csrf_exempt, name="dispatch")
class TenantTokenView(TokenView):
    """POST /auth/realms/{tenant}/protocol/openid-connect/token (client_credentials only).

    The SDK sends `Authorization: Bearer None` with this request; the toolkit reads only
    `Authorization: Basic` from it. TenantOAuth2Validator refuses a client of another realm
    or one whose user may no longer act, whichever way it authenticated.
    """

    def post(self, request, tenant):
        if request.POST.get("grant_type") != "client_credentials":
            return _oauth_error(
                "unsupported_grant_type", "Only grant_type=client_credentials is supported.", 400
            )
        request.META[REALM_META] = tenant
        response = super().post(request)
        if response.status_code == 401:
            return _oauth_error(
                "invalid_client",
                f"Unknown client, wrong secret, a client of another realm than '{tenant}', or a "
                "client whose user is inactive or no longer a member of the tenant.",
                401,
            )
        return response


def _oauth_error(error: str, description: str, status: int) -> JsonResponse:
    return JsonResponse({"error": error, "error_description": description}, status=status)
