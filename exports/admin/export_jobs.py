"""Export job history, detail with cancel/re-run/delete-package, and the supervisor dashboard."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from exports import dashboard
from exports.admin.charts import daily_chart, outcome_rows
from exports.admin.jobs import JOB_IDENTITY, JOB_TIMING, STATUS_COLOURS, JobActions, JobColumns, status_words
from exports.downloads import download_path
from exports.lifecycle import job_cancel
from exports.purge import export_package_delete
from exports.models import ExportJob, ImportJob, JobStatus
from exports.services import export_job_rerun
from tenants.admin.buttons import ObjectButton
from tenants.admin.display import byte_size, code, duration_ms, empty_value, field_display, html_table, mapping_table
from tenants.admin_scope import TenantScopedAdmin, supervised_tenants
from tenants.credentials import session_credential_id

@admin.register(ExportJob)
class ExportJobAdmin(JobActions, JobColumns, TenantScopedAdmin):
    """Export job history and detail: cancel, re-run and delete the stored package; the dashboard."""

    cancel_service = staticmethod(job_cancel)
    rerun_service = staticmethod(export_job_rerun)
    object_buttons = (
        *JobActions.object_buttons,
        ObjectButton("delete_package", "Delete package", danger=True, shown=lambda job: bool(job.package)),
    )
    actions = (*JobActions.actions, "delete_packages")
    # At 1366 px, beside the filters: when it finished, its hash and where from are on the detail page.
    list_display = (
        "short_id",
        "status_badge",
        "tenant",
        "created_by",
        "correlation",
        "created",
        "process_time",
        "size",
    )
    list_filter = (
        "status",
        ("tenant", admin.RelatedOnlyFieldListFilter),
        "created_by",
        ("created_at", admin.DateFieldListFilter),
    )
    fieldsets = (
        JOB_IDENTITY,
        ("Request", {"fields": ("selection", "file_filter", "version_filter", "include_dependencies", "file_name")}),
        ("Exported versions", {"fields": ("versions_display", "dependencies_display")}),
        ("Timing", {"fields": (*JOB_TIMING, "packaging_time")}),
        ("Package", {"fields": ("download_link", "size", "sha256", "estimated", "package_expired_at")}),
        ("Errors", {"fields": ("errors_display",)}),
        ("Audit trail", {"fields": ("audit_trail",)}),
    )
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    # --- columns and fields -----------------------------------------------------------

    size = field_display("file_size", "size", byte_size)
    sha256 = field_display("file_hash", "SHA-256", code)
    estimated = field_display("estimated_size", "estimated size", byte_size)
    # Writing the ZIP alone, without the queue and the selection.
    packaging_time = field_display("zip_process_time_ms", "packaging time", duration_ms)
    selection = field_display("inputs", "selection", mapping_table)

    @admin.display(description="Xcalls")
    def dependencies_display(self, job):
        return html_table(
            ("caller", "calls", "reaches", "in the package"),
            (
                (
                    row["service_uri_source"],
                    code(row["xcall"]),
                    "dynamic: known only when it calculates" if row["dynamic"]
                    else row["resolved_service_uri"] or "nothing (not found)",
                    "yes" if row["included"] else "no",
                )
                for row in job.dependencies
            ),
        )

    @admin.display(description="versions")
    def versions_display(self, job):
        versions = job.versions.select_related("service__folder").order_by(
            "service__folder__name", "service__name", "major", "minor", "patch"
        )
        return html_table(
            ("folder", "service", "version", "version id"),
            (
                (
                    version.service.folder.name,
                    version.service.name,
                    format_html(
                        '<a href="{}">{}</a>',
                        reverse("admin:tenants_serviceversion_change", args=[version.pk]),
                        version.version,
                    ),
                    code(version.version_id),
                )
                for version in versions
            ),
        )

    @admin.display(description="download")
    def download_link(self, job):
        if job.status != JobStatus.CLOSED or not job.package:
            return "expired (package deleted)" if job.package_expired_at else empty_value()
        url = reverse("admin:exports_exportjob_download", args=[job.pk])
        return format_html('<a href="{}">{}</a>', url, job.file_name)

    def download_view(self, request, object_id):
        """A fresh signed link issued to this admin session: it stops working when the user
        may no longer supervise the tenant."""
        job = self.get_object(request, object_id)  # 404 for another tenant's job
        if job.status != JobStatus.CLOSED or not job.package:
            raise Http404(f"Export job {job.pk} has no package to download.")
        return HttpResponseRedirect(
            download_path(job.tenant.slug, job.pk, job.file_name, session_credential_id(request.user))
        )

    # --- deleting the stored package (beside cancel and re-run of JobActions) ----------

    def _delete_package(self, request, job) -> bool:
        if not job.package:
            messages.warning(request, f"Job {job.pk} has no stored package to delete.")
            return False
        freed = export_package_delete(job)
        self.log_change(request, job, "Deleted the stored package")
        messages.success(
            request, f"Deleted the package of job {job.pk} ({filesizeformat(freed)} freed)."
        )
        return True

    @admin.action(description="Delete stored packages of selected jobs", permissions=["supervise"])
    def delete_packages(self, request, queryset):
        for job in queryset:
            self._delete_package(request, job)

    def delete_package_button(self, request, job):
        self._delete_package(request, job)
        return job

    # --- the dashboard ----------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboard_view), name="exports_dashboard"),
            path("<path:object_id>/download/", view(self.download_view), name="exports_exportjob_download"),
        ] + super().get_urls()

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        panels = []
        for tenant in supervised_tenants(request):
            figures = dashboard.tenant_dashboard(tenant)
            imports = figures["imports"]
            import_chart = daily_chart(
                imports["daily"],
                height=160,
                title="Import jobs per day by outcome",
                css_class="import-chart",
            )
            panels.append(
                {
                    **figures,
                    "outcome_rows": outcome_rows(figures),
                    "chart": daily_chart(figures["daily"]),
                    "imports": {
                        **imports,
                        "outcome_rows": outcome_rows(imports),
                        "chart": import_chart,
                    },
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Supervisor dashboard",
            "panels": panels,
            "outcomes": [(status_words(outcome), STATUS_COLOURS[outcome]) for outcome in dashboard.OUTCOMES],
            "workers": dashboard.queue_workers(),
            "import_workers": dashboard.queue_workers(ImportJob.queue_name),
            "show_rq_link": request.user.is_superuser,
            "empty_value_display": empty_value(),
        }
        return TemplateResponse(request, "admin/exports/dashboard.html", context)

