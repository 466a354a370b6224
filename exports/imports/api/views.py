"""The v4 import endpoints: thin views over the import services and selectors."""
from drf_spectacular.utils import OpenApiRequest
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from exports.imports.api.serializers import (
    ImportStatusSerializer,
    ImportUploadSerializer,
    TenantImportStatusSerializer,
)
from exports.error_codes import operation_schema
from exports.api.views import IDEMPOTENCY_KEY, idempotency_key
from exports.imports.services import import_job_create
from exports.models import ImportJob
from exports.selectors import import_job_get, tenant_jobs_status
from sparkexport.errors import InvalidRequest
from tenants.api.tenancy import IsTenantCaller
from tenants.models import Permission

TAGS = ["import"]


class TenantImportAPIView(APIView):
    """Base of every import endpoint: a caller of the URL's tenant allowed to import."""

    permission_classes = [IsTenantCaller]
    required_permissions = (Permission.IMPORTS,)

    def status_document(self, job: ImportJob) -> Response:
        return Response(ImportStatusSerializer(job, context={"request": self.request}).data)


class ImportCreateView(TenantImportAPIView):
    parser_classes = [MultiPartParser, FormParser]

    @operation_schema(
        "import_create",
        tags=TAGS,
        parameters=[IDEMPOTENCY_KEY],
        summary="Upload a package and create an import job (or a dry run)",
        # A JSON-typed part, so that generated clients send the entity as JSON, not as a string.
        request={
            "multipart/form-data": OpenApiRequest(
                ImportUploadSerializer, encoding={"importRequestEntity": {"contentType": "application/json"}}
            )
        },
        ok={200: ImportStatusSerializer},
    )
    def post(self, request, tenant):
        serializer = ImportUploadSerializer(data=multipart_data(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = import_job_create(
            caller=request.caller,
            upload=data["upload"],
            services_modify=data["inputs"]["services_modify"],
            services_existing=data["services_existing"],
            source_system=data["source_system"],
            correlation_id=data["correlation_id"],
            skip_unchanged=data["skip_unchanged"],
            allow_missing_dependencies=data["allow_missing_dependencies"],
            dry_run=data["dry_run"],
            idempotency_key=idempotency_key(request),
        )
        return self.status_document(import_job_get(request.caller, job.pk))


def multipart_data(request):
    """The form's fields and files, each part once; a body that is not multipart is refused in
    those words (the JSON endpoints' message would tell the client to send JSON)."""
    try:
        data = request.data
    except (UnsupportedMediaType, ParseError) as exc:
        raise InvalidRequest(
            "Send the import as multipart/form-data with two parts: importRequestEntity (the request, "
            f"as JSON) and file (the package). The body was refused: {exc.detail}"
        ) from None
    for name in ("importRequestEntity", "file"):
        if len(request.POST.getlist(name)) + len(request.FILES.getlist(name)) > 1:
            raise InvalidRequest(
                f"The form holds {name} more than once: send it once (which one was meant is not guessed).",
                details={name: ["Sent more than once."]},
            )
    return data


class ImportStatusView(TenantImportAPIView):
    @operation_schema(
        "import_status",
        tags=TAGS,
        summary="Status of one import job",
        ok={200: ImportStatusSerializer},
    )
    def get(self, request, tenant, job_id):
        return self.status_document(import_job_get(request.caller, job_id))


class ImportTenantStatusView(TenantImportAPIView):
    @operation_schema(
        "import_tenant_status",
        tags=TAGS,
        summary="Import jobs in progress and of the past hour",
        ok={200: TenantImportStatusSerializer},
    )
    def get(self, request, tenant):
        document = tenant_jobs_status(ImportJob, request.caller)
        return Response(TenantImportStatusSerializer(document).data)
