"""Import job history and detail, with cancel and re-run."""

from django.contrib import admin

from exports.admin.jobs import JOB_IDENTITY, JobActions, JobColumns, pretty_json
from exports.imports.services import import_job_rerun
from exports.lifecycle import job_cancel
from exports.models import ImportJob
from tenants.admin_scope import TenantScopedAdmin


@admin.register(ImportJob)
class ImportJobAdmin(JobActions, JobColumns, TenantScopedAdmin):
    """Import job history and detail, with cancel and re-run (of the kept upload) like exports."""

    cancel_service = staticmethod(job_cancel)
    rerun_service = staticmethod(import_job_rerun)

    list_display = (
        "short_id",
        "status_badge",
        "tenant",
        "created_by",
        "services_existing",
        "dry_run",
        "source_system",
        "correlation_id",
        "created_at",
        "finished_at",
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
        (
            "Request",
            {
                "fields": (
                    "services_modify_display",
                    "services_existing",
                    "dry_run",
                    "upload_kept",
                    "upload_size",
                )
            },
        ),
        ("Outcome", {"fields": ("outputs_display", "errors_display", "warnings_display")}),
        ("Timing", {"fields": ("created_at", "started_at", "finished_at", "process_time")}),
        ("Audit trail", {"fields": ("audit_trail",)}),
    )
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    @admin.display(description="upload")
    def upload_kept(self, job):
        if job.upload:
            return "kept (the job can be re-run)"
        return "not kept (a dry run, or purged after the retention period)"

    @admin.display(description="services_modify")
    def services_modify_display(self, job):
        return pretty_json(job.services_modify)

    @admin.display(description="outputs")
    def outputs_display(self, job):
        return pretty_json(job.outputs)

    @admin.display(description="errors")
    def errors_display(self, job):
        return pretty_json(job.errors) if job.errors else "—"

    @admin.display(description="warnings")
    def warnings_display(self, job):
        return pretty_json(job.warnings) if job.warnings else "—"
