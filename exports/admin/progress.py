"""Progress bars of jobs in the admin: in the status cell of a job in progress and on its page,
refreshed every second by job_progress.js from the admin's `progress/` JSON (the figures its
worker last published, sparkexport/job_progress.py); a job that ends reloads the page."""
from django.contrib import admin
from django.http import JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html

from sparkexport.job_progress import NO_PROGRESS, live_progress_of, progress_figures
from tenants.admin.display import empty_value
from tenants.references import parse_uuid

MAX_JOBS_PER_REFRESH = 200  # a page shows at most list_per_page jobs


def progress_words(figures: dict) -> str:
    """'45 % · 12/30 entries · 120.0/300.0 MB', or what is known of it."""
    entries_total, bytes_total = figures.get("entries_total"), figures.get("bytes_total")
    if entries_total is None or bytes_total is None:
        return "starting"
    percent = 100 * figures["bytes_done"] // bytes_total if bytes_total else 100
    return (f"{percent} % · {figures['entries_done']}/{entries_total} entries · "
            f"{figures['bytes_done'] / 1e6:.1f}/{bytes_total / 1e6:.1f} MB")


class JobProgress:
    """The progress bar field and the JSON its script reads, for a job ModelAdmin."""

    class Media:
        js = ("exports/job_progress.js",)

    def progress_url(self) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_progress")

    def progress_html(self, job, figures: dict, *, words: bool = True):
        """The bar, with its figures in words beside it (or, where room is short, on hover)."""
        value, maximum = figures.get("bytes_done") or 0, figures.get("bytes_total") or 0
        return format_html(
            '<span class="job-progress" data-job="{}" data-url="{}" data-active="{}" title="{}">'
            '<progress value="{}" max="{}" style="width:4.5em"></progress>{}</span>',
            job.pk, self.progress_url(), int(job.is_active), progress_words(figures), value, maximum or 1,
            format_html(" <small>{}</small>", progress_words(figures)) if words else "",
        )

    @admin.display(description="progress")
    def progress_bar(self, job):
        if not job.is_active and not job.progress:
            return empty_value()
        return self.progress_html(job, progress_figures(job.pk, active=job.is_active, recorded=job.progress))

    def progress_cell(self, job):
        """The bar alone, for a list's narrow column."""
        return self.progress_html(job, progress_figures(job.pk, active=True, recorded=job.progress), words=False)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_progress"
        return [path("progress/", self.admin_site.admin_view(self.progress_view), name=name)] + super().get_urls()

    def progress_view(self, request):
        """{job id: {"active", "progress", "words"}} of the jobs asked for that this user may see."""
        ids = [job_id for job_id in map(parse_uuid, request.GET.getlist("id")[:MAX_JOBS_PER_REFRESH]) if job_id]
        jobs = list(self.get_queryset(request).filter(pk__in=ids)) if self.has_view_permission(request) else []
        live = live_progress_of(job.pk for job in jobs if job.is_active)
        answer = {}
        for job in jobs:
            figures = live.get(str(job.pk)) or job.progress or NO_PROGRESS
            answer[str(job.pk)] = {"active": job.is_active, "progress": figures, "words": progress_words(figures)}
        return JsonResponse(answer)
