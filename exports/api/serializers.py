"""Input and output serializers of the v4 export API."""
import re

from django.utils import timezone
from rest_framework import serializers

from exports.job_documents import (  # noqa: F401  the status documents, re-exported for the views
    ExportStatusSerializer,
    download_url,
    iso_utc,
)
from exports.models import FileFilter, JobStatus, VersionFilter

FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_\-. ()]{1,96}\.zip$")
MAX_REFERENCES = 10_000


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
