"""Input and output serializers of the v4 export API."""
import re
from datetime import UTC

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exports.api.error_codes import ErrorItemSerializer, job_errors_description
from exports.downloads import download_path
from exports.models import FileFilter, JobStatus, VersionFilter
from exports.packages.contents import service_rows, service_version_rows
from sparkexport.job_progress import progress_figures

FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_\-. ()]{1,96}\.zip$")
MAX_REFERENCES = 10_000


def iso_utc(value) -> str | None:
    """ISO 8601 in UTC with milliseconds and a Z, as Spark writes timestamps."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _names(max_length: int) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=max_length, allow_blank=False),
        required=False,
        default=list,
        max_length=MAX_REFERENCES,
    )


class ExportInputsSerializer(serializers.Serializer):
    folders = _names(100)
    services = _names(400)
    version_ids = _names(64)

    def validate(self, attrs):
        if not any(attrs.values()):
            raise serializers.ValidationError(
                "Select something to export: give at least one of inputs.folders, "
                "inputs.services or inputs.version_ids."
            )
        return attrs


class ExportRequestSerializer(serializers.Serializer):
    inputs = ExportInputsSerializer()
    file_filter = serializers.ChoiceField(
        choices=FileFilter.choices, required=False, allow_null=True, default=FileFilter.MIGRATE
    )
    version_filter = serializers.ChoiceField(
        choices=VersionFilter.choices, required=False, allow_null=True, default=VersionFilter.ALL
    )
    source_system = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=200, default=None
    )
    correlation_id = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=200, default=None
    )
    file_name = serializers.CharField(
        required=False, allow_null=True, max_length=100, default="package.zip"
    )
    include_dependencies = serializers.BooleanField(
        required=False, allow_null=True, default=False,
        help_text="Also export every version the selected ones call through literal Xcalls, transitively "
        "(each reference resolved as Spark resolves it: the latest version, or the highest matching a "
        "`[version]` prefix). A reference that names no version answers 422 DEPENDENCY_NOT_FOUND. "
        "`outputs.dependencies` lists every Xcall either way.",
    )

    def validate_file_name(self, value):
        if value is None:
            return "package.zip"
        if not FILE_NAME_RE.match(value) or ".." in value:
            raise serializers.ValidationError(
                "Give a bare file name ending in .zip (letters, digits, spaces, '-', '_', "
                "'.', parentheses; no folders), e.g. 'package.zip'."
            )
        return value

    def validate(self, attrs):
        attrs["file_filter"] = attrs.get("file_filter") or FileFilter.MIGRATE
        attrs["version_filter"] = attrs.get("version_filter") or VersionFilter.ALL
        attrs["include_dependencies"] = bool(attrs.get("include_dependencies"))
        return attrs


class CancelRequestSerializer(serializers.Serializer):
    export_status = serializers.ChoiceField(
        choices=[JobStatus.CANCELLED],
        help_text="Only 'cancelled' is accepted: it cancels a job that has not finished.",
        error_messages={
            # DRF formats this with str.format, so literal braces must be doubled.
            "invalid_choice": "export_status {input!r} is not accepted: only "
            "{{'export_status': 'cancelled'}} can be set, which cancels the job."
        },
    )

    # The PATCH body is validated whole, so export_status is required; drf-spectacular marks
    # every PATCH serializer partial (all fields optional) unless `partial` stays False.
    @property
    def partial(self) -> bool:
        return False

    @partial.setter
    def partial(self, value) -> None:
        pass


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


class JobSummaryDataSerializer(serializers.Serializer):
    export_status = serializers.ChoiceField(choices=JobStatus.choices, source="status")
    response_timestamp = serializers.SerializerMethodField()
    created_by = serializers.CharField()
    created_timestamp = serializers.SerializerMethodField()
    updated_timestamp = serializers.SerializerMethodField()
    process_time = serializers.IntegerField(source="process_time_ms")

    def get_response_timestamp(self, job) -> str:
        return iso_utc(timezone.now())

    def get_created_timestamp(self, job) -> str:
        return iso_utc(job.created_at)

    def get_updated_timestamp(self, job) -> str:
        return iso_utc(job.updated_at)


class JobSummarySerializer(serializers.Serializer):
    """One job in GET export/status (an import's in GET import/status: see `kind`)."""

    kind = "export"
    object = serializers.SerializerMethodField()
    id = serializers.UUIDField(source="pk")
    data = JobSummaryDataSerializer(source="*")

    def get_object(self, job) -> str:
        return self.kind


class TenantConfigurationSerializer(serializers.Serializer):
    export_api_job_limit = serializers.IntegerField()


class TenantJobsStatusSerializer(serializers.Serializer):
    export_api_jobs_in_progress = serializers.IntegerField()


class TenantSummarySerializer(serializers.Serializer):
    configuration = TenantConfigurationSerializer()
    status = TenantJobsStatusSerializer()


class TenantExportStatusSerializer(serializers.Serializer):
    """GET export/status: jobs in progress and of the past hour, and the tenant's limits."""

    in_progress_exports = JobSummarySerializer(many=True)
    recent_exports = JobSummarySerializer(many=True)
    tenant = TenantSummarySerializer()
