"""Benchmark-only URLconf: the product's URLs plus two floors a DRF view reaches.

`bare/` is a trivial DRF APIView (no authentication, permission or throttle; a small dict
rendered as JSON) served by the same gunicorn, middleware and renderer as the real
endpoints, so the ratio real/bare isolates what the product adds per request.
`bare-db/<slug>` is the floor of the reference notes' Table A6: a RetrieveAPIView over one
model row (a tenant), no auth, here on PostgreSQL: one ORM query and a ModelSerializer.
"""
from django.urls import path
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from sparkexport.urls import handler404, handler500  # noqa: F401
from sparkexport.urls import urlpatterns as product_urlpatterns
from tenants.models import Tenant


class BareView(APIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = []

    def get(self, request):
        return Response({"status": "ok", "object": "bare"})


class TenantRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["slug", "export_api_job_limit", "import_api_job_limit", "created_at"]


class BareRowView(generics.RetrieveAPIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = []
    queryset = Tenant.objects.all()
    serializer_class = TenantRowSerializer
    lookup_field = "slug"


urlpatterns = [
    path("bare/", BareView.as_view(), name="bench-bare"),
    path("bare-db/<slug:slug>", BareRowView.as_view(), name="bench-bare-db"),
    *product_urlpatterns,
]
