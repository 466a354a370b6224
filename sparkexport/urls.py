"""Top-level routes: tenant APIs, the OAuth token endpoint, the schema, admin, the probes.

The apps' routes are included by name, so this project module imports none of them.
"""
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from sparkexport.api.docs import OfflineRedocView
from sparkexport.api.errors import json_not_found
from sparkexport.health import health, ready
from sparkexport.metrics import metrics_view

urlpatterns = [
    # First: status polls are most of the traffic, and every pattern tried before costs time.
    path("<slug:tenant>/api/v4/", include("exports.api.urls")),
    # The request middleware answers these three before host checks; here for reverse().
    path("health", health, name="health"),
    path("ready", ready, name="ready"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", OfflineRedocView.as_view(url_name="schema"), name="redoc"),
    path("auth/realms/<slug:tenant>/", include("tenants.api.urls")),
    # Unknown API paths answer JSON even with DEBUG on, where handler404 is not used.
    re_path(r"^(?:[^/]+/)?api/", json_not_found),
]

handler404 = "sparkexport.api.errors.json_not_found"
handler500 = "sparkexport.api.errors.json_server_error"
