"""The Keycloak-shaped token endpoint, under /auth/realms/{tenant}/."""
from django.urls import path

from tenants.api.oauth import TenantTokenView

urlpatterns = [
    path("protocol/openid-connect/token", TenantTokenView.as_view(), name="oauth-token"),
]
