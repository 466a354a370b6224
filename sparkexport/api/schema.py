"""OpenAPI descriptions of our authentication schemes (drf-spectacular extensions)."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "sparkexport.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "x-synthetic-key",
            "description": "A tenant API key; send x-tenant-name: {tenant} with it.",
        }


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "sparkexport.api.authentication.BearerTokenAuthentication"
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
