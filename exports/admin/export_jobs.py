"""Export job history, detail with cancel/re-run/delete-package, and the supervisor dashboard."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from exports import dashboard
from exports.admin.jobs import (
    JOB_IDENTITY,
    STATUS_COLOURS,
    JobActions,
    JobButton,
    JobColumns,
    pretty_json,
)
from exports.downloads import download_path
from exports.maintenance import export_package_delete
from exports.models import ExportJob, ImportJob, JobStatus
from exports.lifecycle import job_cancel
from exports.services import export_job_rerun
from tenants.admin_scope import TenantScopedAdmin, supervised_tenants
from tenants.credentials import session_credential_id


@admin.register(ExportJob)
class ExportJobAdmin(JobActions, JobColumns, TenantScopedAdmin):
    """Export job history and detail: cancel, re-run and delete the stored package; the dashboard."""

    cancel_service = staticmethod(job_cancel)
    rerun_service = staticmethod(export_job_rerun)
    job_buttons = (
        *JobActions.job_buttons,
        JobButton(
            "delete_package", "Delete package", danger=True, shown=lambda job: bool(job.package)
        ),
    )
    actions = (*JobActions.actions, "delete_packages")
    list_display = (
        "short_id",
        "status_badge",
        "tenant",
        "created_by",
        "source_system",
        "correlation_id",
        "created_at",
        "finished_at",
        "process_time",
        "size",
        "hash_short",
    )
    list_filter = (
        "status",
        ("tenant", admin.RelatedOnlyFieldListFilter),
        "created_by",
        ("created_at", admin.DateFieldListFilter),
    )
    fieldsets = (
        JOB_IDENTITY,
        ("Request", {"fields": ("inputs_display", "file_filter", "version_filter", "file_name")}),
        ("Exported versions", {"fields": ("versions_display",)}),
        (
            "Timing",
            {
                "fields": (
                    "created_at",
                    "started_at",
                    "finished_at",
                    "process_time",
                    "zip_process_time_ms",
                )
            },
        ),
        (
            "Package",
            {
                "fields": (
                    "download_link",
                    "size",
                    "file_hash",
                    "estimated_size",
                    "package_expired_at",
                )
            },
        ),
        ("Errors", {"fields": ("errors_display",)}),
        ("Audit trail", {"fields": ("audit_trail",)}),
    )
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    # --- columns and fields -----------------------------------------------------------

    @admin.display(description="size", ordering="file_size")
    def size(self, job):
        return filesizeformat(job.file_size) if job.file_size is not None else "—"

    @admin.display(description="hash")
    def hash_short(self, job):
        if not job.file_hash:
            return "—"
        return format_html('<code title="{}">{}…</code>', job.file_hash, job.file_hash[:12])

    @admin.display(description="inputs")
    def inputs_display(self, job):
        return pretty_json(job.inputs)

    @admin.display(description="versions")
    def versions_display(self, job):
        versions = job.versions.select_related("service__folder").order_by(
            "service__folder__name", "service__name", "major", "minor", "patch"
        )
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td>{}</td><td><a href="{}">{}</a></td><td><code>{}</code></td></tr>',
            (
                (
                    version.service.folder.name,
                    version.service.name,
                    reverse("admin:tenants_serviceversion_change", args=[version.pk]),
                    version.version,
                    version.version_id,
                )
                for version in versions
            ),
        )
        if not rows:
            return "—"
        return format_html(
            "<table><thead><tr><th>folder</th><th>service</th><th>version</th><th>version id</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="errors")
    def errors_display(self, job):
        return pretty_json(job.errors) if job.errors else "—"

    @admin.display(description="download")
    def download_link(self, job):
        if job.status != JobStatus.CLOSED or not job.package:
            return "expired (package deleted)" if job.package_expired_at else "—"
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
            "outcomes": [(outcome, STATUS_COLOURS[outcome]) for outcome in dashboard.OUTCOMES],
            "workers": dashboard.queue_workers(),
            "import_workers": dashboard.queue_workers(ImportJob.queue_name),
            "show_rq_link": request.user.is_superuser,
        }
        return TemplateResponse(request, "admin/exports/dashboard.html", context)


def outcome_rows(figures: dict) -> list[tuple[str, list[int]]]:
    """The rows of a dashboard's outcome table: last hour and last 7 days, a count per outcome."""
    return [
        (label, [figures[key][outcome] for outcome in dashboard.OUTCOMES])
        for label, key in (("last hour", "last_hour"), ("last 7 days", "last_7_days"))
    ]


def daily_chart(
    daily: list[dict],
    width: int = 640,
    height: int = 220,
    title: str = "Jobs per day by outcome",
    css_class: str = "daily-chart",
) -> dict:
    """Geometry of a stacked bar chart of daily jobs by outcome, drawn as SVG by the template."""
    left, right, top, bottom = 40, 10, 10, 40
    plot_width, plot_height = width - left - right, height - top - bottom
    series = (*dashboard.OUTCOMES, dashboard.ACTIVE)
    peak = max([sum(day["counts"].values()) for day in daily] + [1])
    step = plot_width / max(len(daily), 1)
    bars, labels = [], []
    for index, day in enumerate(daily):
        x = left + index * step + step * 0.15
        y = top + plot_height
        for key in series:
            count = day["counts"].get(key, 0)
            if not count:
                continue
            bar_height = plot_height * count / peak
            y -= bar_height
            bars.append(
                {
                    "x": round(x, 1),
                    "y": round(y, 1),
                    "width": round(step * 0.7, 1),
                    "height": round(bar_height, 1),
                    "colour": STATUS_COLOURS[key],
                    "title": f"{day['date']:%b %d}: {count} {key}",
                }
            )
        labels.append(
            {
                "x": round(x + step * 0.35, 1),
                "text": f"{day['date']:%d %b}",
                "show": (len(daily) - 1 - index) % 2 == 0,
            }
        )
    ticks = sorted({0, peak // 2, peak})
    return {
        "title": title,
        "css_class": css_class,
        "width": width,
        "height": height,
        "left": left,
        "baseline": top + plot_height,
        "right_edge": width - right,
        "axis_title_x": (left + width - right) // 2,
        "bars": bars,
        "labels": labels,
        "label_y": top + plot_height + 16,
        "y_ticks": [
            {"value": tick, "y": round(top + plot_height * (1 - tick / peak), 1)} for tick in ticks
        ],
        "legend": [{"key": key, "colour": STATUS_COLOURS[key]} for key in series],
        "total": sum(sum(day["counts"].values()) for day in daily),
    }
