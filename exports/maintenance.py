"""Operator services: end jobs no worker will finish, verify stored packages (the purge of old
ones is exports/purge.py).

Each takes `apply`: without it, it reports what it would do and changes nothing.
"""
import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta

import django_rq
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus as RQStatus
from rq.registry import StartedJobRegistry

from exports.lifecycle import job_fail, job_time_out
from exports.webhooks.delivery import webhook_deliveries_sweep
from exports.models import ACTIVE_STATES, ExportJob, ImportJob, JobStatus, package_storage
from exports.scratch import orphan_work_files_remove
from sparkexport.storage import iter_stored_file
from sparkexport.worker import heartbeat_silence

# A job is judged only after this long, so a job that is being enqueued right now is not.
# A job in progress is judged at once: a worker has taken it, so its RQ entry exists.
REAP_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class ReapOutcome:
    job: ExportJob | ImportJob
    status: str
    reason: str


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _worker_verdict(rq_job, connection) -> str | None:
    """Why the worker running this RQ job is gone, or None while it may be alive.

    From Redis alone, whatever host the worker is on: its key is gone, or it has missed
    WORKER_MISSED_HEARTBEATS heartbeats in a row (by its key's TTL, so by Redis's clock).
    RQ itself would notice only once the job's heartbeat expired (interval + 60 s) and a
    registry sweep ran. A worker on this host (settings.HOST_NAME) whose process no longer
    exists is known dead at once; no PID is ever checked across hosts.
    """
    if not rq_job.worker_name:
        return None
    key = Worker.redis_worker_namespace_prefix + rq_job.worker_name
    worker = Worker.find_by_key(key, connection=connection)
    if worker is None:
        return f"its worker {rq_job.worker_name} stopped sending heartbeats (it died)"
    silence = heartbeat_silence(connection, key)
    if silence is not None:
        silent_for, interval = silence
        if silent_for > interval * settings.WORKER_MISSED_HEARTBEATS:
            return (f"its worker {rq_job.worker_name} on {worker.hostname} sent no heartbeat for "
                    f"{silent_for:.0f} s (one is due every {interval} s): it died")
    if worker.hostname == settings.HOST_NAME and worker.pid and not _pid_alive(worker.pid):
        return f"its worker {rq_job.worker_name} (pid {worker.pid} on this host) died"
    return None


def _queue_verdict(job, queue) -> str | None:
    """Why RQ will never finish this job, or None while it may still."""
    try:
        rq_job = Job.fetch(str(job.pk), connection=queue.connection)
    except NoSuchJobError:
        return "its entry on the job queue is gone (Redis lost it), so no worker will run it"
    rq_status = rq_job.get_status(refresh=False)
    if rq_status in (RQStatus.FAILED, RQStatus.STOPPED, RQStatus.CANCELED):
        result = rq_job.latest_result()
        detail = (result.exc_string or "").strip().splitlines()[-1:] if result else []
        return "the worker running it died or failed" + (f" ({detail[0]})" if detail else "")
    if rq_status == RQStatus.STARTED:
        return _worker_verdict(rq_job, queue.connection)
    return None


def _stale(model, now) -> list[ReapOutcome]:
    jobs = model.objects.filter(status__in=ACTIVE_STATES).filter(
        Q(created_at__lt=now - REAP_GRACE) | Q(status=JobStatus.IN_PROGRESS)
    )
    queue = None if settings.EMBEDDED_QUEUE else django_rq.get_queue(model.queue_name)
    if queue is not None:
        # RQ's own sweep: moves jobs of dead workers to the failed registry.
        StartedJobRegistry(queue=queue).cleanup()
    outcomes = []
    for job in jobs.select_related("tenant"):
        timeout = timedelta(seconds=job.tenant.job_timeout_seconds)
        if job.started_at and job.started_at + timeout + REAP_GRACE < now:
            outcomes.append(ReapOutcome(job, JobStatus.CLOSED_BY_TIMEOUT, "it outran its timeout"))
            continue
        verdict = _queue_verdict(job, queue) if queue is not None else None
        if verdict:
            outcomes.append(ReapOutcome(job, JobStatus.FAILED, verdict))
    return outcomes


def stale_jobs(now=None) -> list[ReapOutcome]:
    """Active export and import jobs that will never finish: past their timeout, or lost or failed in RQ."""
    now = now or timezone.now()
    return _stale(ExportJob, now) + _stale(ImportJob, now)


def exports_reap(*, apply: bool, now=None) -> list[ReapOutcome]:
    """End every stale job (failed or closed_by_timeout, with why), remove this host's scratch
    files of jobs that are not running (those ended here, by RQ's own sweep, or cancelled), and
    queue the webhook deliveries that are due and were not queued (exports/webhooks/delivery.py)."""
    outcomes = stale_jobs(now)
    if apply:
        for outcome in outcomes:
            job = outcome.job
            if outcome.status == JobStatus.CLOSED_BY_TIMEOUT:
                job_time_out(type(job), job.pk, job.tenant.job_timeout_seconds)
            else:
                job_fail(type(job), job.pk, "WORKER_LOST", f"The job was ended by the reaper: {outcome.reason}. Run it again.")
        orphan_work_files_remove()
        webhook_deliveries_sweep()
    return outcomes


def reap_exports_job() -> int:
    """RQ (cron) entry point: reap with apply, answer how many jobs were ended."""
    try:
        return len(exports_reap(apply=True))
    except RedisError:
        return 0


@dataclass(frozen=True)
class VerifyOutcome:
    job: ExportJob
    ok: bool
    actual_sha256: str | None
    problem: str = ""


def export_package_verify(job: ExportJob) -> VerifyOutcome:
    """Re-hash a stored package and compare it with the recorded file_hash."""
    digest = hashlib.sha256()
    try:
        for chunk in iter_stored_file(package_storage(), job.package.name):
            digest.update(chunk)
    except (OSError, RedisError) as exc:
        return VerifyOutcome(job, False, None, f"cannot be read: {exc}")
    actual = digest.hexdigest()
    if actual != job.file_hash:
        return VerifyOutcome(job, False, actual, "its bytes no longer match file_hash")
    return VerifyOutcome(job, True, actual)


def stored_packages():
    return ExportJob.objects.exclude(package="").select_related("tenant").order_by("created_at")
