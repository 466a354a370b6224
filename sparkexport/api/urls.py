"""The API's own pages: the OpenAPI schema, its two viewers, and JSON for unknown API paths.
Included last by sparkexport/urls.py, so the catch-all sees only what nothing else matched."""
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from sparkexport.api.docs import OfflineRedocView
from sparkexport.api.errors import json_not_found

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", OfflineRedocView.as_view(url_name="schema"), name="redoc"),
    # Unknown API paths answer JSON even with DEBUG on, where handler404 is not used.
    re_path(r"^(?:[^/]+/)?api/", json_not_found),
]
