"""One lifecycle for export and import jobs: created → in_progress → a terminal state.

Every state change is a compare-and-set update of the row (`filter(status__in=...).update()`),
so a cancel racing the worker can never be overwritten by it; the row is the truth, never
Redis. The job's kind, queue and limit are attributes of its model (exports/models.py), so
nothing here asks which kind it has. RQ entry points are passed as callables (exports/jobs.py).
Creation (`job_created`) and every status change are reported here, once for both kinds, to
the job's log line and metrics (exports/observability.py); every end, to the tenant's webhook
endpoints (exports/webhooks/events.py).
"""
import hashlib
import json
from contextlib import nullcontext

from django.db import transaction
from django.utils import timezone

from exports.audit import audit_record
from exports.models import ACTIVE_STATES, TERMINAL_STATES, AuditAction, BackgroundJob, JobStatus
from exports.observability import job_created_observe, job_moved_observe
from exports.webhooks.events import job_event_record
from sparkexport import queue
from sparkexport.job_progress import forget_progress, live_progress
from sparkexport.errors import Conflict, JobLimitReached, Unprocessable
from sparkexport.logs import log_context_bind

# RQ's hard stop sits beyond the job's own deadline, which ends it `closed_by_timeout`.
RQ_TIMEOUT_GRACE_SECONDS = 60
JOB_LIMIT_RETRY_AFTER_SECONDS = 10


# --- creating a job ----------------------------------------------------------------------


def request_fingerprint(request: dict) -> str:
    """A stable digest of a request's meaning, to tell a retry from a different request."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def idempotent_job(model, caller, key: str, fingerprint: str):
    """The job an earlier request of the same credential with this Idempotency-Key created, if
    its body was the same. Another credential's keys are not seen: each has its own."""
    if not key:
        return None
    job = model.objects.filter(
        tenant=caller.tenant, created_by_credential=caller.credential_id, idempotency_key=key
    ).first()
    if job is not None and job.request_fingerprint != fingerprint:
        raise Unprocessable(
            f"Idempotency-Key {key!r} was already used for a different request (job {job.pk}). "
            "Use a new key for a new request; reuse a key only to retry the same request.",
            code="IDEMPOTENCY_KEY_REUSED",
            details={"job_id": str(job.pk)},
        )
    return job


def creator_fields(caller, idempotency_key: str, fingerprint: str) -> dict:
    """Who asked for a job, and how a retry of the same request finds it."""
    return {
        "created_by": caller.label,
        "created_by_user": caller.user,
        "created_by_key": caller.api_key,
        "created_by_credential": caller.credential_id,
        "idempotency_key": idempotency_key,
        "request_fingerprint": fingerprint,
    }


def job_limit_check(model, locked_tenant) -> None:
    """JOB_LIMIT_REACHED while the tenant (its row locked) runs its limit of jobs of this kind."""
    limit = getattr(locked_tenant, model.job_limit_field)
    running = model.objects.filter(tenant=locked_tenant, status__in=ACTIVE_STATES).count()
    if running >= limit:
        raise JobLimitReached(
            f"Tenant '{locked_tenant.slug}' already runs {running} {model.kind} job(s), its limit "
            f"is {limit}. Retry when a job has finished (GET {model.kind}/status lists them).",
            headers={"Retry-After": str(JOB_LIMIT_RETRY_AFTER_SECONDS)},
        )


def job_created(job: BackgroundJob, *, caller) -> None:
    """A service created `job` for `caller` and committed it: its audit record, its log line
    and its count."""
    audit_record(job=job, action=AuditAction.CREATED, caller=caller)
    job_created_observe(job, tenant_slug=caller.tenant.slug, created_by=caller.label)


def job_created_finished(job: BackgroundJob) -> None:
    """A service created `job` already finished (a reused package, a dry run), in its open
    transaction: its end is an event like any other."""
    job_event_record(type(job), job.pk, job.status)


def job_enqueue(job: BackgroundJob, run, on_failure) -> None:
    """Put a job on its kind's queue: `run(job_id)` and, when RQ fails it, `on_failure`.
    If Redis refuses, the job fails at once and the caller answers 503."""
    try:
        queue.enqueue(
            job.queue_name,
            run,
            job_id=str(job.pk),
            timeout=job.tenant.job_timeout_seconds + RQ_TIMEOUT_GRACE_SECONDS,
            on_failure=on_failure,
            log_fields={"job_id": str(job.pk), "tenant": job.tenant.slug, "correlation_id": job.correlation_id},
            owner=job.tenant.slug,
        )
    except queue.QueueUnavailable:
        job_fail(type(job), job.pk, "SERVICE_UNAVAILABLE", "The job queue was unreachable.")
        raise


# --- moving it on --------------------------------------------------------------------------


def job_transition(model, job_id, from_states, **changes) -> bool:
    """Move a job to new values only if it is still in one of `from_states`; a new status is
    logged and counted once it commits. A job that ends keeps the progress it had published
    (sparkexport/job_progress.py), unless the change says what it is, and its tenant's webhook
    endpoints get a delivery of the event, recorded in the same transaction."""
    ends = changes.get("status") in TERMINAL_STATES
    if ends and "progress" not in changes:
        changes["progress"] = live_progress(job_id)
    # An end and its webhook deliveries commit together (an outbox: exports/webhooks/events.py).
    with transaction.atomic() if ends else nullcontext():
        moved = bool(
            model.objects.filter(pk=job_id, status__in=from_states).update(updated_at=timezone.now(), **changes)
        )
        if moved and ends:
            job_event_record(model, job_id, changes["status"])
    if moved and "status" in changes:
        job_moved_observe(model, job_id, changes)
    if moved and ends:
        transaction.on_commit(lambda: forget_progress(job_id))
    return moved


def job_start(model, job_id):
    """created → in_progress; None if the job is gone or no longer waiting (e.g. cancelled).
    The lines the job's run logs from now on name its tenant and correlation id."""
    if not job_transition(model, job_id, [JobStatus.CREATED], status=JobStatus.IN_PROGRESS, started_at=timezone.now()):
        return None
    job = model.objects.select_related("tenant").get(pk=job_id)
    log_context_bind(tenant=job.tenant.slug, correlation_id=job.correlation_id)
    return job


def job_close(model, job_id, **results) -> bool:
    """in_progress → closed with its results; False if the job was cancelled meanwhile."""
    return job_transition(
        model, job_id, [JobStatus.IN_PROGRESS], status=JobStatus.CLOSED, finished_at=timezone.now(), errors=None, **results
    )


def job_fail(model, job_id, code: str, message: str) -> bool:
    """An active job → failed, with the reason in `errors`."""
    return job_transition(
        model, job_id, ACTIVE_STATES, status=JobStatus.FAILED, finished_at=timezone.now(),
        errors=[{"code": code, "message": message}],
    )


def job_time_out(model, job_id, timeout_seconds: int) -> bool:
    """An active job → closed_by_timeout."""
    message = (
        f"The {model.kind} did not finish within {timeout_seconds} seconds. "
        "Use smaller packages, or ask the operator to raise the timeout."
    )
    return job_transition(
        model, job_id, ACTIVE_STATES, status=JobStatus.CLOSED_BY_TIMEOUT, finished_at=timezone.now(),
        errors=[{"code": "JOB_TIMEOUT", "message": message}],
    )


def job_cancel(job: BackgroundJob, *, caller):
    """created/in_progress → cancelled: an export's worker stops before its next entry, an
    import is rolled back before it commits. JOB_NOT_CANCELLABLE once it has finished."""
    model = type(job)
    if not job_transition(model, job.pk, ACTIVE_STATES, status=JobStatus.CANCELLED, finished_at=timezone.now()):
        job.refresh_from_db()
        raise Conflict(
            f"{model.kind.capitalize()} job {job.pk} has already finished with status '{job.status}', "
            "so it cannot be cancelled.",
            code="JOB_NOT_CANCELLABLE",
            details={"status": job.status},
        )
    job.refresh_from_db()
    log_context_bind(job_id=str(job.pk), correlation_id=job.correlation_id)
    audit_record(job=job, action=AuditAction.CANCELLED, caller=caller)
    return job
