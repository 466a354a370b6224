"""The v4 export endpoints: thin views over the export services and selectors."""
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.exceptions import NotAuthenticated
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from exports.error_codes import operation_schema
from exports.api.serializers import (
    CancelRequestSerializer,
    ExportRequestSerializer,
    ExportStatusSerializer,
    TenantExportStatusSerializer,
)
from exports.api.status_documents import export_status_document, export_tenant_status_document
from exports.audit import audit_record
from exports.downloads import download_token_valid
from exports.models import AuditAction, ExportJob, JobStatus, package_storage
from exports.selectors import export_job_get
from exports.lifecycle import job_cancel
from exports.services import export_job_create
from sparkexport.errors import Conflict, Forbidden, InvalidRequest, NotFound, PackageExpired
from tenants.api.snapshot_reads import SnapshotReadsMixin
from tenants.api.tenancy import IsTenantCaller
from sparkexport.storage import iter_stored_file
from tenants.models import Permission

TAGS = ["export"]


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Retrying with the same key and body, with the same credential, returns the first "
    "job; a different body with the same key is refused (422 IDEMPOTENCY_KEY_REUSED). Keys are "
    "per credential (API key or OAuth client); at most 200 characters.",
)

NO_CACHE = OpenApiParameter(
    "Cache-Control",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="`no-cache` reads the document from the database instead of this server's snapshot of it "
    "(snapshots are current anyway while Redis reports every write).",
)
DOWNLOAD_TOKEN = OpenApiParameter(
    "token",
    str,
    OpenApiParameter.QUERY,
    required=False,
    description="The signed link's token, as `outputs.files[].file` holds it: the download then needs no "
    "credentials until the link expires or the credential it was issued to is revoked. Ignored when "
    "credentials are sent.",
)


class TenantExportAPIView(APIView):
    """Base of every export endpoint: a caller of the URL's tenant allowed to export."""

    permission_classes = [IsTenantCaller]
    required_permissions = (Permission.EXPORTS,)

    def status_document(self, job: ExportJob, status=200) -> Response:
        return Response(
            ExportStatusSerializer(job, context={"request": self.request}).data, status=status
        )


class ExportCreateView(TenantExportAPIView):
    @operation_schema(
        "export_create",
        tags=TAGS,
        summary="Create an export job",
        parameters=[IDEMPOTENCY_KEY],
        request=ExportRequestSerializer,
        ok={200: ExportStatusSerializer},
    )
    def post(self, request, tenant):
        serializer = ExportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = export_job_create(
            caller=request.caller,
            **data["inputs"],
            **_options(data),
            idempotency_key=idempotency_key(request),
        )
        return self.status_document(export_job_get(request.caller, job.pk))


def idempotency_key(request) -> str:
    """The Idempotency-Key header: a retry with the same key and body gets the same job."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 200:
        raise InvalidRequest("The Idempotency-Key header is longer than 200 characters; use a shorter key, e.g. a UUID.")
    return key


def _options(data: dict) -> dict:
    return {key: value for key, value in data.items() if key != "inputs"}


class ExportStatusView(SnapshotReadsMixin, TenantExportAPIView):
    @operation_schema(
        "export_status",
        tags=TAGS,
        summary="Status of one export job",
        parameters=[NO_CACHE],
        ok={200: ExportStatusSerializer},
    )
    def get(self, request, tenant, job_id):
        return Response(export_status_document(request, job_id))


class ExportCancelView(TenantExportAPIView):
    @operation_schema(
        "export_cancel",
        tags=TAGS,
        summary="Cancel an export job",
        request=CancelRequestSerializer,
        ok={200: ExportStatusSerializer},
    )
    def patch(self, request, tenant, job_id):
        job = export_job_get(request.caller, job_id)
        CancelRequestSerializer(data=request.data).is_valid(raise_exception=True)
        job_cancel(job, caller=request.caller)
        return self.status_document(export_job_get(request.caller, job_id))


class ExportTenantStatusView(SnapshotReadsMixin, TenantExportAPIView):
    @operation_schema(
        "export_tenant_status",
        tags=TAGS,
        summary="Export jobs in progress and of the past hour",
        parameters=[NO_CACHE],
        ok={200: TenantExportStatusSerializer},
    )
    def get(self, request, tenant):
        return Response(export_tenant_status_document(request))


def _has_credentials(request) -> bool:
    return "x-synthetic-key" in request.headers or "Authorization" in request.headers


class PackageNegotiation(DefaultContentNegotiation):
    """A package is a ZIP whatever the Accept header asks for (a client generated from the schema
    sends `Accept: application/zip`); an error is JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExportFileView(TenantExportAPIView):
    """The package bytes: with the caller's credentials, or through an unexpired signed link."""

    content_negotiation_class = PackageNegotiation

    def check_permissions(self, request):
        token = request.query_params.get("token")
        if token is not None and not _has_credentials(request):
            if not download_token_valid(self.kwargs["tenant"], self.kwargs["job_id"], token):
                raise Forbidden(
                    "This download link is invalid or has expired. Read the job's status "
                    "again for a fresh link, or download with your credentials.",
                    code="INVALID_DOWNLOAD_LINK",
                )
            return
        if not _has_credentials(request):
            raise NotAuthenticated()
        super().check_permissions(request)

    @operation_schema(
        "export_download",
        tags=TAGS,
        summary="Download an export package",
        parameters=[DOWNLOAD_TOKEN],
        ok={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The ZIP.")},
    )
    def get(self, request, tenant, job_id, file_name):
        caller = getattr(request, "caller", None)
        job = (
            export_job_get(caller, job_id)
            if caller
            else ExportJob.objects.filter(pk=job_id, tenant__slug=tenant).first()
        )
        if job is None or job.file_name != file_name:
            raise NotFound(f"No package {file_name} for export job {job_id}.", code="JOB_NOT_FOUND")
        if job.package_expired_at:
            raise PackageExpired(
                f"The package of export job {job_id} was deleted after the retention period. "
                "Run the export again for a new one.",
            )
        if job.status != JobStatus.CLOSED or not job.package:
            raise Conflict(
                f"Export job {job_id} is '{job.status}', so it has no package to download. "
                "Download once its status is 'closed'.",
                code="JOB_NOT_CLOSED",
                details={"status": job.status},
            )
        audit_record(job=job, action=AuditAction.DOWNLOADED, caller=caller)
        response = StreamingHttpResponse(
            iter_stored_file(package_storage(), job.package.name), content_type="application/zip"
        )
        response["Content-Length"] = str(job.file_size)
        response["Content-Disposition"] = f'attachment; filename="{job.file_name}"'
        return response
