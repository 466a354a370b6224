"""What operators see of jobs: one log line and the metrics of every job event, and the jobs'
gauges read at each scrape (docs/observability.md).

The lifecycle (exports/lifecycle.py) reports every job a service creates (once its
transaction has committed) and every status change, of both kinds; a change is counted and
logged when it commits, so one rolled back (an import's close, undone with its transaction)
is never counted.
"""
import logging
from functools import partial

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import RedisError

from exports.dashboard import queue_workers
from exports.models import ACTIVE_STATES, TERMINAL_STATES, ExportJob, ImportJob, JobStatus
from exports.webhooks.delivery import QUEUE as WEBHOOKS_QUEUE
from sparkexport import metrics
from sparkexport.logs import log_context_bind
from sparkexport.queue import queue_depth

logger = logging.getLogger("sparkexport.jobs")

JOB_MODELS = (ExportJob, ImportJob)
# A job's package: the one an export wrote (or reused), the upload an import read.
PACKAGE_SIZE_FIELDS = {ExportJob.kind: "file_size", ImportJob.kind: "upload_size"}
UNHAPPY_STATES = (JobStatus.FAILED, JobStatus.CLOSED_BY_TIMEOUT)


def job_created_observe(job, *, tenant_slug: str, created_by: str) -> None:
    """A job a service created, its transaction committed: the request's log lines name it
    from now on; it is counted, with its outcome too when it was created finished (a reused
    package, a dry run), and logged."""
    log_context_bind(job_id=str(job.pk), correlation_id=job.correlation_id)
    facts = {"status": job.status, "correlation_id": job.correlation_id, "tenant__slug": tenant_slug,
             "package_bytes": getattr(job, PACKAGE_SIZE_FIELDS[job.kind])}
    _created(type(job), job.pk, facts, created_by)


def job_moved_observe(model, job_id, changes: dict) -> None:
    """A job moved to `changes["status"]`: counted, timed and logged once that commits."""
    transaction.on_commit(partial(_moved, model, job_id, changes), robust=True)


def _created(model, job_id, facts: dict, created_by: str) -> None:
    metrics.JOBS.labels(model.kind, JobStatus.CREATED).inc()
    status = facts["status"]
    if status in TERMINAL_STATES:
        metrics.JOBS.labels(model.kind, status).inc()
        _package_observe(model.kind, status, facts["package_bytes"])
    outcome = f" already {status}" if status != JobStatus.CREATED else ""
    _log(logging.INFO, f"{model.kind} {job_id} created by {created_by}{outcome}", model, job_id, facts, status)


def _moved(model, job_id, changes: dict) -> None:
    status = changes["status"]
    metrics.JOBS.labels(model.kind, status).inc()
    facts = _row(model, job_id)
    message = f"{model.kind} {job_id} {status}"
    if status in TERMINAL_STATES and facts:
        seconds = (facts["finished_at"] - facts["created_at"]).total_seconds()
        metrics.JOB_DURATION.labels(model.kind, status).observe(max(0.0, seconds))
        _package_observe(model.kind, status, facts["package_bytes"])
        message += f" after {seconds:.1f} s"
    error = (changes.get("errors") or [{}])[0]
    if error:
        message += f": {error.get('code')} {error.get('message')}"
    level = logging.WARNING if status in UNHAPPY_STATES else logging.INFO
    _log(level, message, model, job_id, facts, status, code=error.get("code"))


def _row(model, job_id) -> dict:
    """What the log line and the histograms need of the job; {} if the database cannot say."""
    size_field = PACKAGE_SIZE_FIELDS[model.kind]
    try:
        row = model.objects.filter(pk=job_id).values(
            "created_at", "finished_at", "correlation_id", "tenant__slug", size_field
        ).first()
    except DatabaseError as exc:
        logger.warning("%s %s: its event is logged without its details (%s)", model.kind, job_id, exc)
        return {}
    return {**row, "package_bytes": row.pop(size_field)} if row else {}


def _package_observe(kind: str, status: str, size) -> None:
    if status == JobStatus.CLOSED and size is not None:
        metrics.PACKAGE_SIZE.labels(kind).observe(size)


def _log(level, message: str, model, job_id, facts: dict, status: str, code=None) -> None:
    extra = {"event": "job", "kind": model.kind, "job_status": status, "job_id": str(job_id)}
    if facts:
        extra.update(tenant=facts["tenant__slug"], correlation_id=facts["correlation_id"])
        if status == JobStatus.CLOSED:
            extra["package_bytes"] = facts["package_bytes"]
    if code:
        extra["code"] = code
    logger.log(level, message, extra=extra)


class JobLoadCollector:
    """Read at each scrape (settings.METRICS_COLLECTORS): jobs in progress by kind and status,
    and each queue's depth and live workers. The same from every process; Prometheus needs
    one instance's figures (max), not their sum."""

    def collect(self):
        yield self._jobs_in_progress()
        if not settings.EMBEDDED_QUEUE:
            yield from self._queues()

    def _jobs_in_progress(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily("sparkexport_jobs_in_progress", "Jobs not finished, by kind and status.",
                                   labels=["kind", "status"])
        try:
            for model in JOB_MODELS:
                # finished_at is NULL exactly while a job is active, and indexed: no scan of history.
                counts = dict(
                    model.objects.filter(finished_at__isnull=True, status__in=ACTIVE_STATES)
                    .values_list("status").annotate(n=Count("pk")).order_by()
                )
                for status in ACTIVE_STATES:
                    family.add_metric([model.kind, status], counts.get(status, 0))
        except DatabaseError as exc:
            logger.warning("jobs in progress left out of the scrape: %s", exc)
        return family

    def _queues(self):
        depth = GaugeMetricFamily("sparkexport_queue_depth", "Jobs waiting on each RQ queue.", labels=["queue"])
        workers = GaugeMetricFamily("sparkexport_workers", "Live RQ workers listening on each queue.", labels=["queue"])
        for name in (*(model.queue_name for model in JOB_MODELS), WEBHOOKS_QUEUE):
            try:
                depth.add_metric([name], queue_depth(name))
            except RedisError as exc:
                logger.warning("queue %s left out of the scrape: %s", name, exc)
            listening = queue_workers(name)
            if listening["count"] is not None:
                workers.add_metric([name], listening["count"])
        return depth, workers
