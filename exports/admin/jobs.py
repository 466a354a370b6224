"""What the export and import job histories share: columns, search, the detail page's common
fields, and cancel and re-run as actions and as POST buttons."""
from collections.abc import Callable
from functools import partial

from django.contrib import admin, messages
from django.db.models import Q
from django.utils.html import format_html

from exports import dashboard
from exports.admin.history import CreatorFilter, TenantFilter
from exports.admin.progress import JobProgress
from exports.models import AuditEvent, ExportJob, ImportJob, JobStatus
from tenants.references import parse_uuid
from sparkexport.errors import ApplicationError
from tenants.admin.buttons import ObjectButton, ObjectButtons
from tenants.admin.paginators import EstimatedCountPaginator
from tenants.admin.display import created_column, duration_ms, field_display, html_table, records_table
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
JOB_IDENTITY = (None, {"fields": ("id", "tenant", "status_badge", "created_by", "source", "correlation")})
JOB_TIMING = ("created_at", "started_at", "finished_at", "process_time", "progress_bar")
ERROR_COLUMNS = (("code", "code"), ("message", "message"), ("details", "details"))


def status_words(status: str) -> str:
    """A job status (or the dashboard's "active") in words: "closed by timeout"."""
    return JobStatus(status).label.lower() if status in JobStatus.values else status.replace("_", " ")


def admin_caller(request, job: ExportJob | ImportJob) -> Caller:
    return Caller(
        tenant=job.tenant,
        label=request.user.get_username(),
        user=request.user,
        is_supervisor=True,
        credential_id=session_credential_id(request.user),
    )


# List filters whose choices Django finds by reading every job, and their replacements.
HISTORY_FILTERS = {"created_by": CreatorFilter, "tenant": TenantFilter}


class JobColumns(JobProgress):
    """Columns, search, list settings and detail fields shared by the export and import jobs.

    The lists stay fast over a long history (docs/scale.md): counts stop at a bound, facet
    counts are off, the order (newest first, then id) is an index's, the `created_by` and
    `tenant` filters are replaced by ones that list their choices without reading the jobs, and
    the date hierarchy comes from the list's first and last date (job_change_list.html).
    """

    list_select_related = ("tenant",)
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    list_per_page = 50
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    search_fields = ("correlation_id",)
    change_list_template = "admin/exports/job_change_list.html"
    search_help_text = "A job id, or a correlation id or its beginning (case-sensitive)."
    source = field_display("source_system", "source system")
    correlation = field_display("correlation_id", "correlation id")
    created = created_column

    @admin.display(description="job", ordering="id")
    def short_id(self, job):
        return format_html('<span title="{}">{}</span>', job.pk, str(job.pk)[:8])

    @admin.display(description="status", ordering="status")
    def status_badge(self, job):
        """The status in words; under it, for a job in progress, its progress bar."""
        colour = STATUS_COLOURS.get(job.status, STATUS_COLOURS[dashboard.ACTIVE])
        badge = format_html(
            '<span class="job-status" title="{}" style="color:{};font-weight:bold">{}</span>',
            job.status,  # the API's name of the status
            colour,
            status_words(job.status),
        )
        if job.status != JobStatus.IN_PROGRESS:
            return badge
        return format_html("{}<br>{}", badge, self.progress_cell(job))

    @admin.display(description="process time")
    def process_time(self, job):
        """Creation to finish; for a job still in progress, until now."""
        return duration_ms(job.process_time_ms)

    errors_display = field_display("errors", "errors", partial(records_table, columns=ERROR_COLUMNS))

    @admin.display(description="audit trail")
    def audit_trail(self, job):
        events = AuditEvent.objects.filter(job_id=job.pk).order_by("at")
        return html_table(
            ("when (UTC)", "action", "who", "credential"),
            ((event.at.strftime("%Y-%m-%d %H:%M:%S"), event.action, event.actor, event.credential) for event in events),
        )

    def get_list_filter(self, request):
        return tuple(
            HISTORY_FILTERS.get(item if isinstance(item, str) else item[0], item)
            for item in super().get_list_filter(request)
        )

    def get_search_results(self, request, queryset, search_term):
        """A job id (the job, and jobs with it as correlation id), else a correlation id's
        beginning: both read an index (a "contains" search would read every job)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        job_id = parse_uuid(term)
        if job_id is None:
            return queryset.filter(correlation_id__startswith=term), False
        return queryset.filter(Q(pk=job_id) | Q(correlation_id=term)), False


class JobActions(ObjectButtons):
    """Cancel and re-run, as changelist actions and as POST buttons on the job's detail page.

    A subclass names its two services, which raise ApplicationError to refuse:
    `cancel_service = staticmethod(f)` with f(job, *, caller), `rerun_service = staticmethod(f)` with
    f(job, *, caller). Extra buttons go in `object_buttons`, each with a method
    `<name>_button(request, job)` answering the job to show afterwards.
    """

    cancel_service: Callable
    rerun_service: Callable
    object_buttons = (
        ObjectButton("cancel", "Cancel job", danger=True, shown=lambda job: job.is_active),
        ObjectButton("rerun", "Re-run"),
    )
    button_id_prefix = "job"
    actions = ("cancel_jobs", "rerun_jobs")

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
