"""What the export and import job histories share: columns, search, POST-only action buttons."""

import json
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from exports import dashboard
from exports.models import AuditEvent, ExportJob, ImportJob, JobStatus
from exports.references import parse_uuid
from sparkexport.errors import ApplicationError
from tenants.callers import Caller
from tenants.credentials import session_credential_id

STATUS_COLOURS = {
    JobStatus.CLOSED: "#2e7d32",
    JobStatus.FAILED: "#c62828",
    JobStatus.CANCELLED: "#757575",
    JobStatus.CLOSED_BY_TIMEOUT: "#ef6c00",
    dashboard.ACTIVE: "#1565c0",
}

# The first fieldset of every job detail page: which job, whose, from where.
JOB_IDENTITY = (None, {"fields": ("id", "tenant", "status_badge", "created_by", "source_system", "correlation_id")})


def pretty_json(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


def admin_caller(request, job: ExportJob | ImportJob) -> Caller:
    return Caller(
        tenant=job.tenant,
        label=request.user.get_username(),
        user=request.user,
        is_supervisor=True,
        credential_id=session_credential_id(request.user),
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
            (
                (
                    event.at.strftime("%Y-%m-%d %H:%M:%S"),
                    event.action,
                    event.actor,
                    event.credential,
                )
                for event in events
            ),
        )
        return (
            format_html(
                "<table><tr><th>when (UTC)</th><th>action</th><th>who</th><th>credential</th></tr>{}</table>",
                rows,
            )
            if events
            else "—"
        )

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
            '<span class="job-status" style="color:{};font-weight:bold">{}</span>',
            colour,
            job.status,
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
