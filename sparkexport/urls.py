"""Top-level routes: tenant APIs, the OAuth token endpoint, the schema, admin, the probes.

The apps' and the API layer's routes are included by name, so this module imports none of them.
"""
from django.contrib import admin
from django.urls import include, path

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
    path("auth/realms/<slug:tenant>/", include("tenants.api.urls")),
    path("", include("sparkexport.api.urls")),  # the schema and its viewers; then JSON 404s
]

handler404 = "sparkexport.api.errors.json_not_found"
handler500 = "sparkexport.api.errors.json_server_error"
