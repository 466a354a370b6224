"""Input and output serializers of the v4 import API."""

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from exports.api.serializers import (
    JobSummaryDataSerializer,
    JobSummarySerializer,
)
from exports.job_documents import ImportStatusSerializer  # noqa: F401  re-exported for the views
from exports.models import JobStatus, ServicesExisting, UpdateVersionType
from sparkexport.api.middleware import too_large_error
from sparkexport.json_input import JSONInputError, parse_json

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


@extend_schema_serializer(component_name="ImportRequestEntity")
class ImportRequestSerializer(serializers.Serializer):
    """importRequestEntity, the import request sent beside the package."""

    inputs = ImportInputsSerializer()
    services_existing = serializers.ChoiceField(
        choices=ServicesExisting.choices, required=False, allow_null=True, default=ServicesExisting.ABORT
    )
    source_system = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200, default=None)
    correlation_id = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200, default=None)
    dry_run = serializers.BooleanField(required=False, default=False)
    allow_missing_dependencies = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Import even if an XCALL of an imported version reaches no service in this tenant after the "
        "import (each is then a MISSING_DEPENDENCY warning). Default false: such an import is refused with 422 "
        "MISSING_DEPENDENCY.",
    )
    skip_unchanged = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Leave out each package version whose workbook and Neuron SHA-256 equal a version of the "
        "destination service (a replace also wants the same version number): its row says 'unchanged' and names "
        "that version. Re-running an import then writes nothing. Default false.",
    )

    def validate(self, attrs):
        attrs["services_existing"] = attrs.get("services_existing") or ServicesExisting.ABORT
        return attrs


@extend_schema_field(ImportRequestSerializer)
class ImportRequestEntityField(serializers.Field):
    """The import request as JSON, from a plain form field (as the cspark SDK sends it) or from a
    part typed application/json (as clients generated from the schema send it; Django hands it
    over as a file when the part has a file name)."""

    default_error_messages = {
        "required": "Send importRequestEntity, the import request as JSON.",
    }

    def to_internal_value(self, data):
        if hasattr(data, "read"):
            raw = data.read(MAX_ENTITY_BYTES + 1)
            if len(raw) > MAX_ENTITY_BYTES:  # cut by the read above: too large, not "not JSON"
                raise too_large_error("importRequestEntity", MAX_ENTITY_BYTES)
            data = raw.decode("utf-8", errors="replace")
        if not isinstance(data, str) or not data.strip():
            self.fail("required")
        if len(data) > MAX_ENTITY_BYTES:
            raise too_large_error("importRequestEntity", MAX_ENTITY_BYTES)
        try:
            parsed = parse_json(data)
        except JSONInputError as exc:
            raise serializers.ValidationError(f"importRequestEntity is {exc}.") from None
        request = ImportRequestSerializer(data=parsed)
        request.is_valid(raise_exception=True)
        return request.validated_data


class ImportUploadSerializer(serializers.Serializer):
    """The multipart request: `importRequestEntity` and `file`."""

    importRequestEntity = ImportRequestEntityField(
        help_text="The import request. Send it as a part with Content-Type application/json, or as a "
        "plain form field holding the JSON text."
    )
    file = serializers.FileField(
        allow_empty_file=True,  # an empty upload is refused as INVALID_IMPORT_ZIP, like any non-ZIP
        help_text="The ZIP of a 'migrate' export; its file name does not matter.",
        error_messages={
            "required": "Send the package as the multipart file part named 'file'.",
            "invalid": "Send the package as the multipart file part named 'file'.",
        },
    )

    def validate(self, attrs):
        return {**attrs["importRequestEntity"], "upload": attrs["file"]}


class ImportJobSummaryDataSerializer(JobSummaryDataSerializer):
    export_status = None
    import_status = serializers.ChoiceField(choices=JobStatus.choices, source="status")


class ImportJobSummarySerializer(JobSummarySerializer):
    kind = "import"
    data = ImportJobSummaryDataSerializer(source="*")


class ImportTenantConfigurationSerializer(serializers.Serializer):
    import_api_job_limit = serializers.IntegerField()


class ImportTenantJobsStatusSerializer(serializers.Serializer):
    import_api_jobs_in_progress = serializers.IntegerField()


class ImportTenantSummarySerializer(serializers.Serializer):
    configuration = ImportTenantConfigurationSerializer()
    status = ImportTenantJobsStatusSerializer()


class TenantImportStatusSerializer(serializers.Serializer):
    """GET import/status: import jobs in progress and of the past hour, and the tenant's limit."""

    in_progress_imports = ImportJobSummarySerializer(many=True)
    recent_imports = ImportJobSummarySerializer(many=True)
    tenant = ImportTenantSummarySerializer()
