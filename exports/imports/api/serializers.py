"""Input and output serializers of the v4 import API."""
import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exports.api.serializers import (
    ErrorItemSerializer,
    JobStatusSerializer,
    JobSummaryDataSerializer,
    JobSummarySerializer,
)
from exports.models import JobStatus, ServicesExisting, UpdateVersionType

MAX_ENTITY_BYTES = 1024 * 1024


class ServiceModifySerializer(serializers.Serializer):
    service_uri_source = serializers.CharField(max_length=400)
    service_uri_destination = serializers.CharField(
        max_length=400, required=False, allow_null=True, allow_blank=True, default=None
    )
    update_version_type = serializers.ChoiceField(
        choices=UpdateVersionType.choices, required=False, allow_null=True, default=None
    )


class ImportInputsSerializer(serializers.Serializer):
    services_modify = ServiceModifySerializer(many=True, allow_empty=False, max_length=1000)


class ImportRequestSerializer(serializers.Serializer):
    """importRequestEntity, the JSON text sent beside the package."""

    inputs = ImportInputsSerializer()
    services_existing = serializers.ChoiceField(
        choices=ServicesExisting.choices, required=False, allow_null=True, default=ServicesExisting.ABORT
    )
    source_system = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200, default=None)
    correlation_id = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200, default=None)
    dry_run = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs):
        attrs["services_existing"] = attrs.get("services_existing") or ServicesExisting.ABORT
        return attrs


class ImportUploadSerializer(serializers.Serializer):
    """The multipart request: `importRequestEntity` (a field or a JSON part) and `file`."""

    importRequestEntity = serializers.CharField(
        help_text="JSON text: {inputs: {services_modify: [...]}, services_existing, source_system, correlation_id, dry_run}"
    )
    file = serializers.FileField(help_text="The ZIP of a 'migrate' export.")

    def to_internal_value(self, data):
        entity = data.get("importRequestEntity")
        if hasattr(entity, "read"):  # sent as a file part (e.g. Content-Type: application/json)
            entity = entity.read(MAX_ENTITY_BYTES + 1).decode("utf-8", errors="replace")
        if not isinstance(entity, str) or not entity.strip():
            raise serializers.ValidationError(
                {"importRequestEntity": "Send importRequestEntity, the import request as JSON text."}
            )
        try:
            parsed = json.loads(entity)
        except ValueError:
            raise serializers.ValidationError(
                {"importRequestEntity": "importRequestEntity is not valid JSON."}
            ) from None
        request = ImportRequestSerializer(data=parsed)
        if not request.is_valid():
            raise serializers.ValidationError({"importRequestEntity": request.errors})
        upload = data.get("file")
        if not hasattr(upload, "chunks"):
            raise serializers.ValidationError(
                {"file": "Send the package as the multipart file part named 'file'."}
            )
        return {**request.validated_data, "upload": upload}


class ImportServiceRowSerializer(serializers.Serializer):
    service_uri_source = serializers.CharField()
    folder_source = serializers.CharField()
    service_source = serializers.CharField()
    service_id_source = serializers.CharField()
    service_uri_destination = serializers.CharField()
    folder_destination = serializers.CharField()
    service_destination = serializers.CharField()
    service_id_destination = serializers.CharField()
    status = serializers.ChoiceField(choices=["added", "replaced", "skipped"])


class ImportVersionRowSerializer(ImportServiceRowSerializer):
    version_source = serializers.CharField()
    version_id_source = serializers.CharField()
    version_destination = serializers.CharField()
    version_id_destination = serializers.CharField()


class ImportOutputsSerializer(serializers.Serializer):
    services = ImportServiceRowSerializer(many=True)
    service_versions = ImportVersionRowSerializer(many=True)


class ImportStatusSerializer(JobStatusSerializer):
    """The import status document (POST import, GET import/{id}/status)."""

    kind = "import"
    dry_run = serializers.BooleanField(help_text="True: outputs is the plan; nothing was written.")
    outputs = serializers.SerializerMethodField()
    errors = serializers.ListField(child=ErrorItemSerializer(), allow_null=True)
    warnings = serializers.ListField(child=ErrorItemSerializer())

    @extend_schema_field(ImportOutputsSerializer)
    def get_outputs(self, job):
        return {"services": [], "service_versions": [], **job.outputs}


class ImportJobSummaryDataSerializer(JobSummaryDataSerializer):
    export_status = None
    import_status = serializers.ChoiceField(choices=JobStatus.choices, source="status")


class ImportJobSummarySerializer(JobSummarySerializer):
    kind = "import"
    data = ImportJobSummaryDataSerializer(source="*")


class ImportTenantSummarySerializer(serializers.Serializer):
    configuration = serializers.DictField(child=serializers.IntegerField(), help_text="import_api_job_limit")
    status = serializers.DictField(child=serializers.IntegerField(), help_text="import_api_jobs_in_progress")


class TenantImportStatusSerializer(serializers.Serializer):
    """GET import/status: import jobs in progress and of the past hour, and the tenant's limit."""

    in_progress_imports = ImportJobSummarySerializer(many=True)
    recent_imports = ImportJobSummarySerializer(many=True)
    tenant = ImportTenantSummarySerializer()
