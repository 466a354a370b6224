"""Input and output serializers of the v4 import API."""

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from exports.api.error_codes import ErrorItemSerializer, job_errors_description, warnings_description
from exports.api.serializers import (
    JobStatusSerializer,
    JobSummaryDataSerializer,
    JobSummarySerializer,
)
from exports.imports.plan import ItemStatus
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
            data = raw.decode("utf-8", errors="replace") if len(raw) <= MAX_ENTITY_BYTES else None
            if data is None:  # truncated by the read above: too large, not "not JSON"
                raise too_large_error("importRequestEntity", MAX_ENTITY_BYTES)
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
