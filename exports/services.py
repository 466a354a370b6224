"""Export job services: create a job (every prerequisite checked first), re-run one.

The states a job then goes through are the lifecycle's (exports/lifecycle.py), shared with
imports; the worker's side is exports/jobs.py and exports/building.py.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from exports.audit import audit_record
from exports.jobs import on_export_job_failure, run_export_job
from exports.lifecycle import (
    creator_fields, idempotent_job, job_created, job_created_finished, job_enqueue, job_limit_check,
    request_fingerprint,
)
from exports.models import AuditAction, ExportJob, ExportJobVersion, FileFilter, JobStatus, VersionFilter
from exports.packages.reuse import reusable_package
from exports.selection import Selection, export_selection
from sparkexport import queue
from sparkexport.errors import Unprocessable
from tenants.models import MB, Tenant


def _check_size(tenant: Tenant, size: int) -> None:
    if size > tenant.max_package_bytes:
        raise Unprocessable(
            f"The package would be about {size / MB:.1f} MB, over this tenant's limit of "
            f"{tenant.max_package_bytes / MB:.0f} MB. Export fewer services or versions per job "
            "(for example version_filter 'latest'), or use file_filter 'onpremises'.",
            code="PACKAGE_TOO_LARGE",
            details={"estimated_bytes": size, "limit_bytes": tenant.max_package_bytes},
        )


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
    include_dependencies: bool = False,
    enqueue: bool = True,
    idempotency_key: str = "",
) -> ExportJob:
    """Check every prerequisite, create the job within the tenant's limit, and queue it.

    With `include_dependencies` the package holds every version the selection reaches through
    its Xcalls (exports/dependencies.py). When an identical package is still stored the job is
    closed at once with it. A retry carrying the same `idempotency_key` and body gets the first
    job back. With enqueue=False the caller runs the job itself (the export_run command).
    """
    inputs = {"folders": folders, "services": services, "version_ids": version_ids}
    options = {"file_filter": file_filter, "version_filter": version_filter, "source_system": source_system,
               "correlation_id": correlation_id, "file_name": file_name}
    if include_dependencies:  # only then, so requests fingerprinted before the option stay equal
        options["include_dependencies"] = True
    fingerprint = request_fingerprint({"inputs": inputs, **options})
    if earlier := idempotent_job(ExportJob, caller, idempotency_key, fingerprint):
        return earlier
    selection = export_selection(
        caller.tenant, **inputs, file_filter=file_filter, version_filter=version_filter,
        include_dependencies=include_dependencies,
    )
    fields = {"inputs": inputs, **options, "dependencies": list(selection.dependencies),
              **creator_fields(caller, idempotency_key, fingerprint)}
    try:
        job, created = _create(caller, selection, fields, enqueue=enqueue)
    except queue.QueueUnavailable:
        raise queue.unavailable_error() from None
    except IntegrityError:
        # A simultaneous retry with the same Idempotency-Key won the insert.
        if earlier := idempotent_job(ExportJob, caller, idempotency_key, fingerprint):
            return earlier
        raise
    if not created:
        return job
    job_created(job, caller=caller)
    return job


def _create(caller, selection: Selection, fields: dict, *, enqueue: bool) -> tuple[ExportJob, bool]:
    """(the job row and its versions, created now), within the tenant's limits checked on its
    locked row; (its twin's job, False) for a retry that waited for the lock."""
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=caller.tenant.pk)
        # A retry that waited for the lock finds the job its twin just created.
        if earlier := idempotent_job(ExportJob, caller, fields["idempotency_key"], fields["request_fingerprint"]):
            return earlier, False
        _check_size(locked, selection.estimated_size)
        # An identical package still stored closes the job at once: no work, no slot taken.
        reused = reusable_package(locked.pk, selection.content_key)
        if reused is None:
            job_limit_check(ExportJob, locked)
        job = ExportJob.objects.create(
            tenant=locked,
            estimated_size=selection.estimated_size,
            content_key=selection.content_key,
            **fields,
            **(_reused_package_fields(reused) if reused else {}),
        )
        ExportJobVersion.objects.bulk_create(
            ExportJobVersion(exportjob_id=job.pk, serviceversion_id=pk) for pk in selection.version_pks
        )
        if reused is not None:
            job_created_finished(job)
        elif enqueue:
            transaction.on_commit(lambda: job_enqueue(job, run_export_job, on_export_job_failure))
    return job, True


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
        include_dependencies=job.include_dependencies,
    )
