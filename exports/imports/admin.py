"""Import job history and detail, with cancel and re-run."""

from functools import partial

from django.contrib import admin

from exports.admin.jobs import JOB_IDENTITY, JOB_TIMING, JobActions, JobColumns
from exports.imports.services import import_job_rerun
from exports.lifecycle import job_cancel
from exports.models import ImportJob
from tenants.admin.display import byte_size, field_display, records_table
from tenants.admin_scope import TenantScopedAdmin

REQUESTED_COLUMNS = (
    ("service_uri_source", "from the package"),
    ("service_uri_destination", "to"),
    ("update_version_type", "new versions numbered by"),
)
SERVICE_COLUMNS = (
    ("service_uri_source", "from the package"),
    ("service_uri_destination", "to"),
    ("service_id_destination", "service id"),
    ("status", "outcome"),
)
VERSION_COLUMNS = (
    ("service_uri_source", "from the package"),
    ("service_uri_destination", "to"),
    ("version_id_destination", "version id"),
    ("status", "outcome"),
)
WARNING_COLUMNS = (("code", "code"), ("message", "message"))


@admin.register(ImportJob)
class ImportJobAdmin(JobActions, JobColumns, TenantScopedAdmin):
    """Import job history and detail, with cancel and re-run (of the kept upload) like exports."""

    cancel_service = staticmethod(job_cancel)
    rerun_service = staticmethod(import_job_rerun)

    # At 1366 px, beside the filters: what happens to existing services and when it finished
    # are on the detail page.
    list_display = (
        "short_id",
        "status_badge",
        "tenant",
        "created_by",
        "correlation",
        "dry_run",
        "created",
        "process_time",
    )
    list_filter = (
        "status",
        ("tenant", admin.RelatedOnlyFieldListFilter),
        "created_by",
        "dry_run",
        ("created_at", admin.DateFieldListFilter),
    )
    fieldsets = (
        JOB_IDENTITY,
        ("Request", {"fields": (
            "requested", "if_present", "skip_unchanged", "allow_missing_dependencies", "dry_run", "upload_kept",
            "upload_size_display",
        )}),
        ("Services", {"fields": ("services_display",)}),
        ("Versions", {"fields": ("versions_display",)}),
        ("Errors and warnings", {"fields": ("errors_display", "warnings_display")}),
        ("Timing", {"fields": JOB_TIMING}),
        ("Audit trail", {"fields": ("audit_trail",)}),
    )
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    @admin.display(description="upload")
    def upload_kept(self, job):
        if job.upload:
            return "kept (the job can be re-run)"
        return "not kept (a dry run, or purged after the retention period)"

    upload_size_display = field_display("upload_size", "upload size", byte_size)
    requested = field_display("services_modify", "services to import", partial(records_table, columns=REQUESTED_COLUMNS))
    warnings_display = field_display("warnings", "warnings", partial(records_table, columns=WARNING_COLUMNS))

    @admin.display(description="if a service exists")
    def if_present(self, job):
        return job.get_services_existing_display().lower()

    @admin.display(description="services")
    def services_display(self, job):
        return records_table(job.outputs.get("services"), SERVICE_COLUMNS)

    @admin.display(description="versions")
    def versions_display(self, job):
        return records_table(job.outputs.get("service_versions"), VERSION_COLUMNS)
