"""Supervisor admin for export and import jobs: history, detail with actions, and the dashboard."""
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST
from django_rq.admin import QueueAdmin
from django_rq.models import Dashboard as RQDashboard

from exports import dashboard
from exports.downloads import download_token
from exports.import_services import IMPORTS_QUEUE, import_job_cancel, import_job_rerun
from exports.maintenance import export_package_delete
from exports.models import AuditEvent, ExportJob, ImportJob, JobStatus
from exports.references import parse_uuid
from exports.services import export_job_cancel, export_job_rerun
from sparkexport.admin_scope import TenantScopedAdmin, supervised_tenants
from sparkexport.api.errors import ApplicationError
from sparkexport.api.tenancy import Caller

STATUS_COLOURS = {
    JobStatus.CLOSED: "#2e7d32",
    JobStatus.FAILED: "#c62828",
    JobStatus.CANCELLED: "#757575",
    JobStatus.CLOSED_BY_TIMEOUT: "#ef6c00",
    dashboard.ACTIVE: "#1565c0",
}


def pretty_json(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


def job_download_path(job: ExportJob) -> str | None:
    """A signed link to the package, as the API gives; None without a package to download."""
    if job.status != JobStatus.CLOSED or not job.package:
        return None
    path_ = reverse(
        "export-file",
        kwargs={"tenant": job.tenant.slug, "job_id": job.pk, "file_name": job.file_name},
    )
    return f"{path_}?token={download_token(job.tenant.slug, job.pk)}"


def admin_caller(request, job: ExportJob | ImportJob) -> Caller:
    return Caller(
        tenant=job.tenant,
        label=request.user.get_username(),
        user=request.user,
        is_supervisor=True,
    )


class JobColumns:
    """Columns, search and list settings shared by the export and import job histories."""

    list_select_related = ("tenant",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_per_page = 50

    @admin.display(description="audit trail")
    def audit_trail(self, job):
        events = AuditEvent.objects.filter(job_id=job.pk).order_by("at")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((event.at.strftime("%Y-%m-%d %H:%M:%S"), event.action, event.actor, event.credential) for event in events),
        )
        return format_html(
            "<table><tr><th>when (UTC)</th><th>action</th><th>who</th><th>credential</th></tr>{}</table>", rows
        ) if events else "—"

    search_fields = ("correlation_id",)
    change_list_template = "admin/exports/job_change_list.html"
    search_help_text = "A job id (exact) or a correlation id."

    @admin.display(description="job", ordering="id")
    def short_id(self, job):
        return format_html('<span title="{}">{}</span>', job.pk, str(job.pk)[:8])

    @admin.display(description="status", ordering="status")
    def status_badge(self, job):
        colour = STATUS_COLOURS.get(job.status, STATUS_COLOURS[dashboard.ACTIVE])
        return format_html(
            '<span class="job-status" style="color:{};font-weight:bold">{}</span>', colour, job.status
        )

    @admin.display(description="process time")
    def process_time(self, job):
        return f"{job.process_time_ms:,} ms"

    def get_search_results(self, request, queryset, search_term):
        job_id = parse_uuid(search_term.strip())
        if job_id is None:
            return super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        return queryset.filter(Q(pk=job_id) | Q(correlation_id=term)), False


@dataclass(frozen=True)
class JobButton:
    """A POST button on a job's detail page: URL name suffix `name`, handled by `<name>_button`."""

    name: str
    label: str
    danger: bool = False
    shown: Callable = lambda job: True


class JobActions:
    """Cancel and re-run, as changelist actions and as POST buttons on the job's detail page.

    A subclass names its two services, which raise ApplicationError to refuse:
    `cancel_service = staticmethod(f)` with f(job, *, caller), `rerun_service = staticmethod(f)` with
    f(job, *, caller). Extra buttons go in `job_buttons`, each with a method
    `<name>_button(request, job)` answering the job to show afterwards.
    """

    cancel_service: Callable
    rerun_service: Callable
    job_buttons = (
        JobButton("cancel", "Cancel job", danger=True, shown=lambda job: job.is_active),
        JobButton("rerun", "Re-run"),
    )
    actions = ("cancel_jobs", "rerun_jobs")
    change_form_template = "admin/exports/job_change_form.html"

    def _url_name(self, suffix: str) -> str:
        return f"admin:{self.opts.app_label}_{self.opts.model_name}_{suffix}"

    def _show(self, job) -> HttpResponseRedirect:
        return redirect(self._url_name("change"), job.pk)

    # --- the services, with their refusals as messages ----------------------------------

    def _cancel(self, request, job) -> bool:
        try:
            self.cancel_service(job, caller=admin_caller(request, job))
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return False
        self.log_change(request, job, "Cancelled")
        return True

    def _rerun(self, request, job):
        try:
            new_job = self.rerun_service(job, caller=admin_caller(request, job))
        except ApplicationError as exc:
            messages.error(request, f"Job {job.pk} was not re-run: {exc.message}")
            return None
        self.log_change(request, job, f"Re-run as {new_job.pk}")
        messages.success(request, f"Job {job.pk} re-run as {new_job.pk}.")
        return new_job

    # --- changelist actions -------------------------------------------------------------

    @admin.action(description="Cancel selected jobs (not finished)", permissions=["supervise"])
    def cancel_jobs(self, request, queryset):
        cancelled = sum(self._cancel(request, job) for job in queryset)
        if cancelled:
            messages.success(request, f"Cancelled {cancelled} job(s).")

    @admin.action(description="Re-run selected jobs", permissions=["supervise"])
    def rerun_jobs(self, request, queryset):
        new_jobs = [self._rerun(request, job) for job in queryset.select_related("tenant")]
        new_jobs = [job for job in new_jobs if job is not None]
        if len(new_jobs) == 1:
            return self._show(new_jobs[0])
        return None

    # --- detail-page buttons ------------------------------------------------------------

    def cancel_button(self, request, job):
        if self._cancel(request, job):
            messages.success(request, f"Job {job.pk} cancelled.")
        return job

    def rerun_button(self, request, job):
        return self._rerun(request, job) or job

    def get_urls(self):
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                f"<path:object_id>/{button.name.replace('_', '-')}/",
                self.admin_site.admin_view(self._button_view(button)),
                name=f"{info}_{button.name}",
            )
            for button in self.job_buttons
        ] + super().get_urls()

    def _button_view(self, button: JobButton):
        handler = getattr(self, f"{button.name}_button")

        @require_POST
        def view(request, object_id):
            job = self.get_object(request, object_id)  # 404 for another tenant's job
            if not self.has_supervise_permission(request, job):
                raise PermissionDenied
            return self._show(handler(request, job))

        view.__name__ = f"{button.name}_view"
        return view

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        buttons = []
        if self.has_supervise_permission(request, job):
            buttons = [
                {
                    "url": reverse(self._url_name(button.name), args=[job.pk]),
                    "id": f"job-{button.name.replace('_', '-')}",
                    "label": button.label,
                    "danger": button.danger,
                }
                for button in self.job_buttons
                if button.shown(job)
            ]
        extra_context = {**(extra_context or {}), "job_buttons": buttons}
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(ExportJob)
class ExportJobAdmin(JobActions, JobColumns, TenantScopedAdmin):
    """Export job history and detail: cancel, re-run and delete the stored package; the dashboard."""

    cancel_service = staticmethod(export_job_cancel)
    rerun_service = staticmethod(export_job_rerun)
    job_buttons = (
        *JobActions.job_buttons,
        JobButton("delete_package", "Delete package", danger=True, shown=lambda job: bool(job.package)),
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
        (None, {"fields": ("id", "tenant", "status_badge", "created_by", "source_system", "correlation_id")}),
        ("Request", {"fields": ("inputs_display", "file_filter", "version_filter", "file_name")}),
        ("Exported versions", {"fields": ("versions_display",)}),
        ("Timing", {"fields": ("created_at", "started_at", "finished_at", "process_time", "zip_process_time_ms")}),
        ("Package", {"fields": ("download_link", "size", "file_hash", "estimated_size", "package_expired_at")}),
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
        url = job_download_path(job)
        if url is None:
            return "expired (package deleted)" if job.package_expired_at else "—"
        return format_html('<a href="{}">{}</a> (link valid for a limited time)', url, job.file_name)

    # --- deleting the stored package (beside cancel and re-run of JobActions) ----------

    def _delete_package(self, request, job) -> bool:
        if not job.package:
            messages.warning(request, f"Job {job.pk} has no stored package to delete.")
            return False
        freed = export_package_delete(job)
        self.log_change(request, job, "Deleted the stored package")
        messages.success(request, f"Deleted the package of job {job.pk} ({filesizeformat(freed)} freed).")
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
        return [path("dashboard/", view(self.dashboard_view), name="exports_dashboard")] + super().get_urls()

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        panels = []
        for tenant in supervised_tenants(request):
            figures = dashboard.tenant_dashboard(tenant)
            imports = figures["imports"]
            import_chart = daily_chart(
                imports["daily"], height=160, title="Import jobs per day by outcome", css_class="import-chart"
            )
            panels.append(
                {
                    **figures,
                    "outcome_rows": outcome_rows(figures),
                    "chart": daily_chart(figures["daily"]),
                    "imports": {**imports, "outcome_rows": outcome_rows(imports), "chart": import_chart},
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Supervisor dashboard",
            "panels": panels,
            "outcomes": [(outcome, STATUS_COLOURS[outcome]) for outcome in dashboard.OUTCOMES],
            "workers": dashboard.queue_workers(),
            "import_workers": dashboard.queue_workers(IMPORTS_QUEUE),
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
                {"x": round(x, 1), "y": round(y, 1), "width": round(step * 0.7, 1), "height": round(bar_height, 1),
                 "colour": STATUS_COLOURS[key], "title": f"{day['date']:%b %d}: {count} {key}"}
            )
        labels.append({"x": round(x + step * 0.35, 1), "text": f"{day['date']:%d %b}", "show": (len(daily) - 1 - index) % 2 == 0})
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
        "y_ticks": [{"value": tick, "y": round(top + plot_height * (1 - tick / peak), 1)} for tick in ticks],
        "legend": [{"key": key, "colour": STATUS_COLOURS[key]} for key in series],
        "total": sum(sum(day["counts"].values()) for day in daily),
    }


def _superuser_only(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_superuser:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


class OperatorQueueAdmin(QueueAdmin):
    """django-rq's admin dashboard for superusers only: it lists and acts on every tenant's jobs."""

    token_views = {"django_rq_home_json", "django_rq_metrics"}  # their own API-token auth

    def get_urls(self):
        patterns = super().get_urls()
        for pattern in patterns:
            if pattern.name not in self.token_views:
                pattern.callback = _superuser_only(pattern.callback)
        return patterns


if admin.site.is_registered(RQDashboard):
    admin.site.unregister(RQDashboard)
    admin.site.register(RQDashboard, OperatorQueueAdmin)


@admin.register(ImportJob)
class ImportJobAdmin(JobActions, JobColumns, TenantScopedAdmin):
    """Import job history and detail, with cancel and re-run (of the kept upload) like exports."""

    cancel_service = staticmethod(import_job_cancel)
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
        (None, {"fields": ("id", "tenant", "status_badge", "created_by", "source_system", "correlation_id")}),
        ("Request", {"fields": ("services_modify_display", "services_existing", "dry_run", "upload_kept", "upload_size")}),
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
