"""The status documents of export and import jobs, as GET {kind}/{id}/status answers them.

Their serializers live here, outside the API packages, because the API is not their only
reader: a webhook delivery (exports/webhooks/) carries the same document as its `data`.
`job_status_document` builds one where there is no request: its links are absolute on
PUBLIC_BASE_URL and the download link is issued to the credential that created the job.
"""
from dataclasses import dataclass
from datetime import UTC
from urllib.parse import urljoin

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exports.downloads import download_path
from exports.error_codes import ErrorItemSerializer, job_errors_description, warnings_description
from exports.imports.plan import ItemStatus
from exports.models import JobStatus
from exports.packages.contents import service_rows, service_version_rows
from sparkexport.job_progress import progress_figures


def iso_utc(value) -> str | None:
    """ISO 8601 in UTC with milliseconds and a Z, as Spark writes timestamps."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ExportFileSerializer(serializers.Serializer):
    file = serializers.URLField(help_text="Download URL; works with your credentials or, until it expires, without.")
    file_hash = serializers.CharField(help_text="SHA-256 (hex) of the ZIP.")
    zip_process_time = serializers.IntegerField(help_text="Milliseconds spent building the ZIP.")


class ServiceRowSerializer(serializers.Serializer):
    service_uri_source = serializers.CharField()
    folder_source = serializers.CharField()
    service_source = serializers.CharField()
    service_id_source = serializers.UUIDField()


class ServiceVersionRowSerializer(ServiceRowSerializer):
    version_source = serializers.CharField()
    version_id_source = serializers.UUIDField()


class DependencyRowSerializer(serializers.Serializer):
    service_uri_source = serializers.CharField(help_text="The calling version, as `folder/service[version]`.")
    version_id_source = serializers.UUIDField(help_text="The calling version's version_id.")
    xcall = serializers.CharField(help_text="The Xcall's first argument as written (the expression, if dynamic).")
    dynamic = serializers.BooleanField(help_text="The reference is computed when the workbook calculates: it "
                                       "cannot be resolved, so it is reported, never followed.")
    resolved_service_uri = serializers.CharField(
        allow_null=True, help_text="The version the Xcall reaches, as `folder/service[version]`; null when "
        "dynamic or unresolved.")
    resolved_version_id = serializers.UUIDField(allow_null=True, help_text="Its version_id; null likewise.")
    included = serializers.BooleanField(help_text="Whether the version it reaches is in this package.")


class ExportOutputsSerializer(serializers.Serializer):
    files = ExportFileSerializer(many=True)
    services = ServiceRowSerializer(many=True)
    service_versions = ServiceVersionRowSerializer(many=True)
    dependencies = DependencyRowSerializer(
        many=True, help_text="One row per Xcall of each exported version, sorted by caller and Xcall, "
        "whether or not `include_dependencies` was asked for; the package manifest holds the same rows.")


def download_url(request, tenant_slug: str, job_id, file_name: str) -> str:
    """The package's signed link, issued to the credential of `request.caller`."""
    return request.build_absolute_uri(download_path(tenant_slug, job_id, file_name, request.caller.credential_id))


class ProgressSerializer(serializers.Serializer):
    entries_done = serializers.IntegerField(help_text="Entries (export: ZIP members; import: files stored) done.")
    entries_total = serializers.IntegerField(allow_null=True, help_text="Known when the job starts; null before.")
    bytes_done = serializers.IntegerField(help_text="Bytes of those entries done.")
    bytes_total = serializers.IntegerField(allow_null=True, help_text="Known when the job starts; null before.")


class JobStatusSerializer(serializers.Serializer):
    """What the export and import status documents share; `kind` names which one."""

    kind = ""
    object = serializers.SerializerMethodField()
    id = serializers.UUIDField(source="pk")
    response_timestamp = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    status_url = serializers.SerializerMethodField()
    process_time = serializers.IntegerField(source="process_time_ms", help_text="Milliseconds.")
    source_system = serializers.CharField(allow_null=True)
    correlation_id = serializers.CharField(allow_null=True)
    progress = serializers.SerializerMethodField(
        help_text="How far the job got, updated a few times a second while it runs; done equals total once `closed`."
    )

    def get_object(self, job) -> str:
        return self.kind

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, job) -> dict:
        return progress_figures(job.pk, active=job.is_active, recorded=job.progress)

    def get_response_timestamp(self, job) -> str:
        return iso_utc(timezone.now())

    def get_status_url(self, job) -> str:
        path = reverse(f"{self.kind}-status", kwargs={"tenant": job.tenant.slug, "job_id": job.pk})
        return self.context["request"].build_absolute_uri(path)


class ExportStatusSerializer(JobStatusSerializer):
    """The export status document (POST export, GET status, PATCH)."""

    kind = "export"
    outputs = serializers.SerializerMethodField()
    errors = serializers.SerializerMethodField()

    @extend_schema_field(ErrorItemSerializer(many=True, allow_null=True, help_text=job_errors_description("export")))
    def get_errors(self, job):
        if job.package_expired_at:
            return [
                {
                    "code": "PACKAGE_EXPIRED",
                    "message": f"The package was deleted on {iso_utc(job.package_expired_at)} after "
                    "the retention period. Run the export again for a new one.",
                }
            ]
        return job.errors

    @extend_schema_field(ExportOutputsSerializer)
    def get_outputs(self, job):
        versions = list(job.versions.all())
        files = []
        if job.status == JobStatus.CLOSED and job.package:
            files.append(
                {
                    "file": download_url(self.context["request"], job.tenant.slug, job.pk, job.file_name),
                    "file_hash": job.file_hash,
                    "zip_process_time": job.zip_process_time_ms,
                }
            )
        return {
            "files": files,
            "services": service_rows(versions),
            "service_versions": service_version_rows(versions),
            "dependencies": job.dependencies,
        }


class ImportServiceRowSerializer(serializers.Serializer):
    service_uri_source = serializers.CharField()
    folder_source = serializers.CharField()
    service_source = serializers.CharField()
    service_id_source = serializers.CharField()
    service_uri_destination = serializers.CharField()
    folder_destination = serializers.CharField()
    service_destination = serializers.CharField()
    service_id_destination = serializers.CharField()
    status = serializers.ChoiceField(
        choices=ItemStatus.choices,
        help_text="'unchanged' (skip_unchanged only): nothing was written; a version row then names the "
        "existing version that equals it.",
    )


class ImportVersionRowSerializer(ImportServiceRowSerializer):
    version_source = serializers.CharField()
    version_id_source = serializers.CharField()
    version_destination = serializers.CharField()
    version_id_destination = serializers.CharField()


class ImportOutputsSerializer(serializers.Serializer):
    services = ImportServiceRowSerializer(many=True)
    service_versions = ImportVersionRowSerializer(many=True)
    source_tenant = serializers.CharField(allow_null=True, help_text="The tenant the package was exported from.")
    source_installation = serializers.CharField(
        allow_null=True, help_text="The installation the package was exported from, if its manifest says."
    )
    file_hash = serializers.CharField(
        allow_null=True, help_text="SHA-256 of the uploaded package (the export's outputs.files[].file_hash)."
    )


class ImportStatusSerializer(JobStatusSerializer):
    """The import status document (POST import, GET import/{id}/status)."""

    kind = "import"
    dry_run = serializers.BooleanField(help_text="True: outputs is the plan; nothing was written.")
    outputs = serializers.SerializerMethodField()
    errors = serializers.ListField(
        child=ErrorItemSerializer(), allow_null=True, help_text=job_errors_description("import")
    )
    warnings = serializers.ListField(child=ErrorItemSerializer(), help_text=warnings_description())

    @extend_schema_field(ImportOutputsSerializer)
    def get_outputs(self, job):
        lineage = {"source_tenant": None, "source_installation": None, "file_hash": job.upload_sha256 or None}
        return {"services": [], "service_versions": [], **lineage, **job.outputs}



@dataclass(frozen=True)
class _CreatorCaller:
    credential_id: str


@dataclass(frozen=True)
class _OutsideRequest:
    """What the serializers ask of a request, for a document built outside one."""

    caller: _CreatorCaller

    def build_absolute_uri(self, path: str) -> str:
        return urljoin(settings.PUBLIC_BASE_URL.rstrip("/") + "/", path.lstrip("/"))


def job_status_document(job) -> dict:
    """`job`'s status document as its creator's GET status would answer it now."""
    serializer = ExportStatusSerializer if job.kind == "export" else ImportStatusSerializer
    request = _OutsideRequest(_CreatorCaller(job.created_by_credential))
    return dict(serializer(job, context={"request": request}).data)
