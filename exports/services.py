"""Export job services: every state transition of a job happens here.

Transitions are compare-and-set updates on the row (`filter(status=...).update(...)`), so
a cancel racing the worker can never be overwritten by it.
"""
import hashlib
import json
import logging
import time
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from exports.audit import audit_record
from exports.models import ACTIVE_STATES, AuditAction, ExportJob, ExportJobVersion, FileFilter, JobStatus, VersionFilter
from exports.packages.contents import estimated_package_size, package_entries
from exports.references import parse_service_reference, parse_uuid
from exports.packages.reuse import content_key, reusable_package
from exports.selectors import export_selection_resolve
from sparkexport import queue, snapshots
from sparkexport.errors import Conflict, InvalidServiceUri, JobLimitReached, Unprocessable
from tenants.snapshot_scopes import CATALOG_SCOPE
from tenants.models import MB, Tenant

logger = logging.getLogger(__name__)

EXPORTS_QUEUE = "exports"
# RQ's hard stop sits beyond the job's own deadline, which ends it `closed_by_timeout`.
RQ_TIMEOUT_GRACE_SECONDS = 60
JOB_LIMIT_RETRY_AFTER_SECONDS = 10


def _parse_version_ids(values: list[str]):
    parsed = []
    for value in values:
        version_id = parse_uuid(value)
        if version_id is None:
            raise InvalidServiceUri(
                f"inputs.version_ids holds {value!r}, which is not a version_id UUID.",
                details={"version_id": value},
            )
        parsed.append(version_id)
    return parsed


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


def _reused_package_fields(earlier: ExportJob) -> dict:
    now = timezone.now()
    return {
        "status": JobStatus.CLOSED,
        "started_at": now,
        "finished_at": now,
        "package": earlier.package.name,
        "file_size": earlier.file_size,
        "file_hash": earlier.file_hash,
        "zip_process_time_ms": 0,
    }


def _check_compiled(versions) -> None:
    uncompiled = [str(version) for version in versions if not version.is_compiled]
    if uncompiled:
        raise Unprocessable(
            f"{uncompiled[0]} has no compiled Neuron package, so it cannot be exported. "
            "Compile it, or leave it out of the selection.",
            code="NEURON_NOT_COMPILED",
            details={"service_versions": uncompiled},
        )


def _check_size(tenant: Tenant, size: int) -> None:
    if size > tenant.max_package_bytes:
        raise Unprocessable(
            f"The package would be about {size / MB:.1f} MB, over this tenant's limit of "
            f"{tenant.max_package_bytes / MB:.0f} MB. Export fewer services or versions per job "
            "(for example version_filter 'latest'), or use file_filter 'onpremises'.",
            code="PACKAGE_TOO_LARGE",
            details={"estimated_bytes": size, "limit_bytes": tenant.max_package_bytes},
        )


@dataclass(frozen=True)
class Selection:
    """What an export request resolved to: all that creating its job needs."""

    version_pks: tuple[int, ...]
    estimated_size: int
    content_key: str


def _resolve(tenant: Tenant, *, refs, folders, version_ids, file_filter, version_filter) -> Selection:
    versions = export_selection_resolve(
        tenant=tenant, folders=folders, refs=refs, version_ids=version_ids, version_filter=version_filter
    )
    _check_compiled(versions)
    entries = package_entries(
        tenant_slug=tenant.slug, versions=versions, file_filter=file_filter, version_filter=version_filter
    )
    size = estimated_package_size(versions, file_filter)
    return Selection(tuple(version.pk for version in versions), size, content_key(entries))


def _selection(tenant: Tenant, **request) -> Selection:
    """The request's selection; a repeat of a request is not resolved again while the catalog
    is unchanged (its snapshot token says so). The tenant's size limit is checked by the
    caller, on the locked tenant row."""
    scopes = [CATALOG_SCOPE]
    born = time.monotonic()
    tokens = snapshots.current_tokens(scopes)
    current = tuple(tokens.values()) if tokens and None not in tokens.values() else None
    memo_key = ("export-selection", tenant.pk, request_fingerprint(request))
    if current and (selection := snapshots.store.get(memo_key, current)):
        return selection
    selection = _resolve(tenant, **request)
    if current:
        snapshots.store.put(
            memo_key, current, selection, born=born, weight=1 + len(selection.version_pks) // 100, owner=tenant.slug
        )
    elif tokens is not None:
        snapshots.tokens_start([scope for scope in scopes if tokens[scope] is None])
    return selection


def export_job_create(
    *,
    caller,
    folders: list[str],
    services: list[str],
    version_ids: list[str],
    file_filter: str = FileFilter.MIGRATE,
    version_filter: str = VersionFilter.ALL,
    source_system: str | None = None,
    correlation_id: str | None = None,
    file_name: str = "package.zip",
    enqueue: bool = True,
    idempotency_key: str = "",
) -> ExportJob:
    """Check every prerequisite, create the job within the tenant's limit, and queue it.

    When an identical package is still stored the job is closed at once with it. A retry
    carrying the same `idempotency_key` and body gets the first job back. With
    enqueue=False the caller runs the job itself (the export_run command).
    """
    tenant = caller.tenant
    inputs = {"folders": folders, "services": services, "version_ids": version_ids}
    fingerprint = request_fingerprint(
        {"inputs": inputs, "file_filter": file_filter, "version_filter": version_filter,
         "source_system": source_system, "correlation_id": correlation_id, "file_name": file_name}
    )
    if earlier := idempotent_job(ExportJob, caller, idempotency_key, fingerprint):
        return earlier
    selection = _selection(
        tenant,
        refs=[parse_service_reference(service) for service in services],
        folders=folders,
        version_ids=_parse_version_ids(version_ids),
        file_filter=file_filter,
        version_filter=version_filter,
    )

    try:
        with transaction.atomic():
            locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
            # A retry that waited for the lock finds the job its twin just created.
            if earlier := idempotent_job(ExportJob, caller, idempotency_key, fingerprint):
                return earlier
            _check_size(locked, selection.estimated_size)
            # An identical package still stored closes the job at once: no work, no slot taken.
            reused = reusable_package(tenant.pk, selection.content_key)
            running = 0 if reused else ExportJob.objects.filter(tenant=locked, status__in=ACTIVE_STATES).count()
            if reused is None and running >= locked.export_api_job_limit:
                raise JobLimitReached(
                    f"Tenant '{tenant.slug}' already runs {running} export job(s), its limit "
                    f"is {locked.export_api_job_limit}. Retry when a job has finished "
                    "(GET export/status lists them).",
                    headers={"Retry-After": str(JOB_LIMIT_RETRY_AFTER_SECONDS)},
                )
            job = ExportJob.objects.create(
                tenant=locked,
                created_by=caller.label,
                created_by_user=caller.user,
                created_by_key=caller.api_key,
                created_by_credential=caller.credential_id,
                inputs=inputs,
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint,
                file_filter=file_filter,
                version_filter=version_filter,
                source_system=source_system,
                correlation_id=correlation_id,
                file_name=file_name,
                estimated_size=selection.estimated_size,
                content_key=selection.content_key,
                **(_reused_package_fields(reused) if reused else {}),
            )
            ExportJobVersion.objects.bulk_create(
                ExportJobVersion(exportjob_id=job.pk, serviceversion_id=pk) for pk in selection.version_pks
            )
            if enqueue and reused is None:
                transaction.on_commit(lambda: job_enqueue(job, EXPORTS_QUEUE, locked.job_timeout_seconds))
    except queue.QueueUnavailable:
        raise queue.unavailable_error() from None
    except IntegrityError:
        # A simultaneous retry with the same Idempotency-Key won the insert.
        if earlier := idempotent_job(ExportJob, caller, idempotency_key, fingerprint):
            return earlier
        raise
    audit_record(job=job, action=AuditAction.CREATED, caller=caller)
    logger.info("export %s created by %s in %s: %d versions", job.id, caller.label, tenant, len(selection.version_pks))
    return job


def job_enqueue(job, queue_name: str, timeout_seconds: int) -> None:
    """Put an export or import job on its queue; if Redis refuses, the job fails at once."""
    kind = "export" if isinstance(job, ExportJob) else "import"
    try:
        queue.enqueue(
            queue_name,
            f"exports.jobs.run_{kind}_job",
            job_id=str(job.pk),
            timeout=timeout_seconds + RQ_TIMEOUT_GRACE_SECONDS,
            on_failure=f"exports.jobs.on_{kind}_job_failure",
        )
    except queue.QueueUnavailable:
        job_fail(type(job), job.pk, "SERVICE_UNAVAILABLE", "The job queue was unreachable.")
        raise


def job_transition(model, job_id, from_states, **changes) -> bool:
    """Move a job (export or import) to new values only if it is still in one of `from_states`."""
    return bool(
        model.objects.filter(pk=job_id, status__in=from_states).update(updated_at=timezone.now(), **changes)
    )


def export_job_start(job_id) -> ExportJob | None:
    """created → in_progress; None if the job is gone or no longer waiting (e.g. cancelled)."""
    if not job_transition(ExportJob, job_id, [JobStatus.CREATED], status=JobStatus.IN_PROGRESS, started_at=timezone.now()):
        return None
    return ExportJob.objects.select_related("tenant").get(pk=job_id)


def export_job_complete(
    job_id, *, package_name: str, size: int, sha256: str, zip_ms: int, content_key: str = ""
) -> bool:
    """in_progress → closed with its package; False if the job was cancelled meanwhile."""
    return job_transition(
        ExportJob,
        job_id,
        [JobStatus.IN_PROGRESS],
        status=JobStatus.CLOSED,
        finished_at=timezone.now(),
        package=package_name,
        file_size=size,
        file_hash=sha256,
        zip_process_time_ms=zip_ms,
        content_key=content_key,
        errors=None,
    )


def job_fail(model, job_id, code: str, message: str) -> bool:
    """An active export or import job → failed, with the reason in `errors`."""
    logger.warning("%s %s failed: %s %s", model.__name__, job_id, code, message)
    return job_transition(
        model,
        job_id,
        ACTIVE_STATES,
        status=JobStatus.FAILED,
        finished_at=timezone.now(),
        errors=[{"code": code, "message": message}],
    )


def export_job_fail(job_id, code: str, message: str) -> bool:
    return job_fail(ExportJob, job_id, code, message)


def job_time_out(model, job_id, timeout_seconds: int) -> bool:
    """An active export or import job → closed_by_timeout."""
    kind = "export" if model is ExportJob else "import"
    return job_transition(
        model,
        job_id,
        ACTIVE_STATES,
        status=JobStatus.CLOSED_BY_TIMEOUT,
        finished_at=timezone.now(),
        errors=[
            {
                "code": "JOB_TIMEOUT",
                "message": f"The {kind} did not finish within {timeout_seconds} seconds. "
                f"Use smaller packages, or ask the operator to raise the timeout.",
            }
        ],
    )


def export_job_time_out(job_id, timeout_seconds: int) -> bool:
    """in_progress → closed_by_timeout."""
    return job_time_out(ExportJob, job_id, timeout_seconds)


def export_job_cancel(job: ExportJob, *, caller) -> ExportJob:
    """created/in_progress → cancelled; the worker stops before its next entry."""
    if not job_transition(ExportJob, job.pk, ACTIVE_STATES, status=JobStatus.CANCELLED, finished_at=timezone.now()):
        job.refresh_from_db()
        raise Conflict(
            f"Export job {job.pk} has already finished with status '{job.status}', so it "
            "cannot be cancelled.",
            code="JOB_NOT_CANCELLABLE",
            details={"status": job.status},
        )
    job.refresh_from_db()
    audit_record(job=job, action=AuditAction.CANCELLED, caller=caller)
    logger.info("export %s cancelled", job.pk)
    return job


def export_job_rerun(job: ExportJob, *, caller) -> ExportJob:
    """A new job with the same inputs and options, through the same checks as the API."""
    audit_record(job=job, action=AuditAction.RERUN, caller=caller)
    return export_job_create(
        caller=caller,
        folders=job.inputs.get("folders", []),
        services=job.inputs.get("services", []),
        version_ids=job.inputs.get("version_ids", []),
        file_filter=job.file_filter,
        version_filter=job.version_filter,
        source_system=job.source_system,
        correlation_id=job.correlation_id,
        file_name=job.file_name,
    )
