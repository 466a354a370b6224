"""The API's documentation pages, served whole by this installation so that they work offline.

Swagger UI and ReDoc come from drf-spectacular-sidecar's static files (SPECTACULAR_SETTINGS);
drf-spectacular's ReDoc page also links Google Fonts, which this one leaves out (ReDoc then
uses the browser's fonts).
"""
import functools

from django.template import engines
from drf_spectacular.views import SpectacularRedocView
from rest_framework.renderers import TemplateHTMLRenderer

REDOC_PAGE = """{% extends "drf_spectacular/redoc.html" %}
{% block head %}
<title>{{ title|default:"Redoc" }}</title>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body { margin: 0; padding: 0; }</style>
{% endblock head %}"""


@functools.cache
def _redoc_page():
    return engines["django"].from_string(REDOC_PAGE)


class _RedocPageRenderer(TemplateHTMLRenderer):
    def resolve_template(self, template_names):
        return _redoc_page()


class OfflineRedocView(SpectacularRedocView):
    """ReDoc at /api/redoc/, with nothing loaded from another host."""

    renderer_classes = [_RedocPageRenderer]
