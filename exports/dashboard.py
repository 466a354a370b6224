"""Selectors for the supervisor dashboard: a tenant's export and import job figures, and whether workers are alive."""
from datetime import datetime, time, timedelta

import django_rq
from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from redis.exceptions import RedisError
from rq import Worker

from exports.models import ACTIVE_STATES, ExportJob, ImportJob, JobStatus

OUTCOMES = (JobStatus.CLOSED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.CLOSED_BY_TIMEOUT)
ACTIVE = "active"
CHART_DAYS = 14
# The percentiles read at most this many recent durations, so the page stays fast.
DURATION_SAMPLE_LIMIT = 10_000


def percentile(sorted_values: list[int], fraction: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * (position - lower)


def _outcome_counts(jobs) -> dict[str, int]:
    counts = dict(jobs.values_list("status").annotate(n=Count("pk")).order_by())
    return {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}


def _process_times_ms(jobs, since) -> list[int]:
    """Durations (created → finished) of the jobs closed since `since`, ascending."""
    rows = (
        jobs.filter(status=JobStatus.CLOSED, finished_at__gte=since)
        .order_by("-finished_at")
        .values_list("created_at", "finished_at")[:DURATION_SAMPLE_LIMIT]
    )
    return sorted(max(0, int((end - start).total_seconds() * 1000)) for start, end in rows)


def _daily_counts(jobs, first_day) -> list[dict]:
    """Jobs created on each of the last CHART_DAYS days, by outcome (active ones apart)."""
    # From the first day's midnight, not `created_at__date`: a range on the column reads
    # (tenant, created_at) for these days only, where a date of each row would read them all.
    since = timezone.make_aware(datetime.combine(first_day, time.min))
    rows = (
        jobs.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values_list("day", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    days = {first_day + timedelta(days=offset): {} for offset in range(CHART_DAYS)}
    for day, status, n in rows:
        key = ACTIVE if status in ACTIVE_STATES else status
        if day in days:
            days[day][key] = days[day].get(key, 0) + n
    series = (*OUTCOMES, ACTIVE)
    return [
        {"date": day, "counts": {key: counts.get(key, 0) for key in series}}
        for day, counts in days.items()
    ]


def _job_load(jobs, now) -> dict:
    """Jobs in progress, outcomes of the last hour and of the last 7 days, and the daily counts."""
    first_day = timezone.localdate(now) - timedelta(days=CHART_DAYS - 1)
    return {
        "in_progress": jobs.filter(status__in=ACTIVE_STATES).count(),
        "last_hour": _outcome_counts(jobs.filter(created_at__gte=now - timedelta(hours=1))),
        "last_7_days": _outcome_counts(jobs.filter(created_at__gte=now - timedelta(days=7))),
        "daily": _daily_counts(jobs, first_day),
    }


def _process_time_figures(jobs, now) -> dict:
    durations = _process_times_ms(jobs, now - timedelta(days=7))
    return {"median": percentile(durations, 0.5), "p95": percentile(durations, 0.95), "jobs": len(durations)}


def tenant_dashboard(tenant, now=None) -> dict:
    """The figures of a tenant's dashboard: load, outcomes, process times, stored packages; imports apart."""
    now = now or timezone.now()
    jobs = ExportJob.objects.filter(tenant=tenant)
    packages = jobs.exclude(package="").aggregate(count=Count("*"), bytes=Sum("file_size"))
    return {
        "tenant": tenant,
        **_job_load(jobs, now),
        "job_limit": tenant.export_api_job_limit,
        "process_time_ms": _process_time_figures(jobs, now),
        "packages": {"count": packages["count"], "bytes": packages["bytes"] or 0},
        "imports": tenant_import_figures(tenant, now),
    }


def tenant_import_figures(tenant, now=None) -> dict:
    """A tenant's import jobs: load against the import job limit, outcomes, dry runs, kept uploads."""
    now = now or timezone.now()
    jobs = ImportJob.objects.filter(tenant=tenant)
    uploads = jobs.exclude(upload="").aggregate(count=Count("*"), bytes=Sum("upload_size"))
    return {
        **_job_load(jobs, now),
        "job_limit": tenant.import_api_job_limit,
        # A dry run closes at once; its zero duration would say nothing about real imports.
        "process_time_ms": _process_time_figures(jobs.filter(dry_run=False), now),
        "dry_runs_last_7_days": jobs.filter(dry_run=True, created_at__gte=now - timedelta(days=7)).count(),
        "uploads": {"count": uploads["count"], "bytes": uploads["bytes"] or 0},
    }


def queue_workers(queue_name: str = ExportJob.queue_name) -> dict:
    """How many RQ workers listen on a queue (the exports queue by default); `embedded` in development mode."""
    if settings.EMBEDDED_QUEUE:
        return {"embedded": True, "count": None, "error": None}
    try:
        count = len(Worker.all(queue=django_rq.get_queue(queue_name)))
    except RedisError as exc:
        return {"embedded": False, "count": None, "error": str(exc)}
    return {"embedded": False, "count": count, "error": None}
