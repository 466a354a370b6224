"""Import job services: check an upload, plan it, and apply it all or nothing."""
import hashlib
import logging
import os

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from exports.import_plan import ItemStatus, PlannedService, import_plan_build, plan_outputs
from exports.audit import audit_record
from exports.models import ACTIVE_STATES, AuditAction, ImportJob, JobStatus, package_storage
from exports.packages.reader import InvalidPackage, Package, open_member, read_package
from exports.services import (
    JOB_LIMIT_RETRY_AFTER_SECONDS,
    idempotent_job,
    job_enqueue,
    job_fail,
    job_transition,
    request_fingerprint,
)
from sparkexport import queue
from sparkexport.errors import ApplicationError, Conflict, JobLimitReached, PayloadTooLarge, Unprocessable
from sparkexport.storage import local_path, uploaded_file_path
from tenants.models import MB, Service, ServiceVersion, Tenant

logger = logging.getLogger(__name__)

IMPORTS_QUEUE = "imports"
# The package's members may be at most this much larger, uncompressed, than the upload.
UNCOMPRESSED_FACTOR = 4


def _read(path: str, tenant: Tenant) -> Package:
    try:
        return read_package(path, max_uncompressed_bytes=tenant.max_package_bytes * UNCOMPRESSED_FACTOR)
    except InvalidPackage as exc:
        raise Unprocessable(str(exc), code="INVALID_IMPORT_ZIP") from None


def _check_size(tenant: Tenant, size: int) -> None:
    if size > tenant.max_package_bytes:
        raise PayloadTooLarge(
            f"The uploaded file size of {size / MB:.1f} MB exceeds the upload limit of "
            f"{tenant.max_package_bytes / MB:.0f} MB. Export fewer services per package.",
            code="EXCEEDED_FILE_SIZE",
            details={"size_bytes": size, "limit_bytes": tenant.max_package_bytes},
        )


def import_job_create(
    *,
    caller,
    upload,
    services_modify: list[dict],
    services_existing: str,
    source_system: str | None = None,
    correlation_id: str | None = None,
    dry_run: bool = False,
    enqueue: bool = True,
    idempotency_key: str = "",
) -> ImportJob:
    """Check the upload and the plan, then queue the import (or, for a dry run, just answer the plan).

    A retry carrying the same `idempotency_key`, request and file gets the first job back.
    With enqueue=False the caller runs the job itself (the import_run command).
    """
    tenant = caller.tenant
    _check_size(tenant, upload.size)
    with uploaded_file_path(upload) as path:
        upload_sha256 = _sha256_of(path)
        fingerprint = request_fingerprint(
            {"services_modify": services_modify, "services_existing": services_existing,
             "source_system": source_system, "correlation_id": correlation_id,
             "dry_run": dry_run, "upload_sha256": upload_sha256}
        )
        if earlier := idempotent_job(ImportJob, caller, idempotency_key, fingerprint):
            return earlier
        package = _read(path, tenant)
        plan = import_plan_build(
            tenant=tenant, package=package, services_modify=services_modify, services_existing=services_existing
        )
        fields = dict(
            tenant=tenant,
            created_by=caller.label,
            created_by_user=caller.user,
            created_by_key=caller.api_key,
            created_by_credential=caller.credential_id,
            services_modify=services_modify,
            services_existing=services_existing,
            source_system=source_system,
            correlation_id=correlation_id,
            upload_size=upload.size,
            upload_sha256=upload_sha256,
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint,
            outputs=plan_outputs(plan),
            warnings=_unselected_warnings(package, plan),
        )
        try:
            if dry_run:
                now = timezone.now()
                job = ImportJob.objects.create(
                    **fields, dry_run=True, status=JobStatus.CLOSED, started_at=now, finished_at=now
                )
            else:
                job = _create_and_queue(caller, fields, path, enqueue)
        except IntegrityError:
            # A simultaneous retry with the same Idempotency-Key won the insert.
            if earlier := idempotent_job(ImportJob, caller, idempotency_key, fingerprint):
                return earlier
            raise
    audit_record(job=job, action=AuditAction.CREATED, caller=caller)
    return job


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _unselected_warnings(package: Package, plan: list[PlannedService]) -> list[dict]:
    selected = {(item.source_folder, item.source_service) for item in plan}
    left_out = sorted({f"{v.folder}/{v.service}" for v in package.versions} - {f"{f}/{s}" for f, s in selected})
    return [
        {"code": "SERVICE_NOT_SELECTED", "message": f"{uri} is in the package but not in services_modify, so it was not imported."}
        for uri in left_out
    ]


def _create_and_queue(caller, fields: dict, path: str, enqueue: bool) -> ImportJob:
    tenant = caller.tenant
    storage = package_storage()
    stored_name = None
    try:
        with transaction.atomic():
            locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
            # A retry that waited for the lock finds the job its twin just created.
            if earlier := idempotent_job(ImportJob, caller, fields["idempotency_key"], fields["request_fingerprint"]):
                return earlier
            running = ImportJob.objects.filter(tenant=locked, status__in=ACTIVE_STATES).count()
            if running >= locked.import_api_job_limit:
                raise JobLimitReached(
                    f"Tenant '{tenant.slug}' already runs {running} import job(s), its limit is "
                    f"{locked.import_api_job_limit}. Retry when a job has finished.",
                    headers={"Retry-After": str(JOB_LIMIT_RETRY_AFTER_SECONDS)},
                )
            job = ImportJob.objects.create(**fields)
            with open(path, "rb") as handle:
                stored_name = storage.save(f"imports/{tenant.slug}/{job.pk}.zip", File(handle))
            ImportJob.objects.filter(pk=job.pk).update(upload=stored_name)
            if enqueue:
                transaction.on_commit(lambda: job_enqueue(job, IMPORTS_QUEUE, locked.job_timeout_seconds))
    except queue.QueueUnavailable:
        import_job_discard_upload(job)
        raise queue.unavailable_error() from None
    except BaseException:
        if stored_name:  # the row was rolled back with it
            storage.delete(stored_name)
        raise
    job.refresh_from_db()
    logger.info("import %s created by %s in %s", job.pk, job.created_by, tenant)
    return job


def import_job_start(job_id) -> ImportJob | None:
    """created → in_progress; None if the job is no longer waiting."""
    if not job_transition(ImportJob, job_id, [JobStatus.CREATED], status=JobStatus.IN_PROGRESS, started_at=timezone.now()):
        return None
    return ImportJob.objects.select_related("tenant").get(pk=job_id)


def import_job_complete(job_id, outputs: dict) -> bool:
    return job_transition(
        ImportJob, job_id, [JobStatus.IN_PROGRESS], status=JobStatus.CLOSED, finished_at=timezone.now(), outputs=outputs, errors=None
    )


def import_job_fail(job_id, code: str, message: str) -> bool:
    return job_fail(ImportJob, job_id, code, message)


def import_job_discard_upload(job: ImportJob) -> None:
    """Delete the stored upload of a job (past retention, or when it could not be queued)."""
    name = ImportJob.objects.filter(pk=job.pk).values_list("upload", flat=True).first()
    if name:
        package_storage().delete(name)
        ImportJob.objects.filter(pk=job.pk).update(upload="")


class ImportCancelled(Exception):
    """The job was cancelled while it was being applied; everything was rolled back."""


def import_job_apply(job: ImportJob) -> dict:
    """Write the planned services and versions and close the job, in one transaction.

    On failure nothing stays: files are stored before the transaction commits and deleted
    if it does not; files of replaced versions are deleted only after it commits.
    """
    storage = package_storage()
    saved: list[str] = []
    with local_path(storage, job.upload.name) as path:
        package = _read(path, job.tenant)
        try:
            with transaction.atomic():
                plan = import_plan_build(
                    tenant=job.tenant,
                    package=package,
                    services_modify=job.services_modify,
                    services_existing=job.services_existing,
                )
                replaced_files = []
                for item in plan:
                    replaced_files += _apply(item, path, saved, author=job.created_by)
                # Closing the job in the same transaction serialises it with a cancel: a
                # cancel that came first makes this update match nothing, and all is undone.
                if not import_job_complete(job.pk, plan_outputs(plan)):
                    raise ImportCancelled(job.pk)
                transaction.on_commit(lambda: [default_storage.delete(name) for name in replaced_files])
        except BaseException:
            for name in saved:
                default_storage.delete(name)
            raise
    return plan_outputs(plan)


def _apply(item: PlannedService, package_path: str, saved: list[str], author: str) -> list[str]:
    """Write one planned service; answers the stored files of the versions it replaced."""
    if item.status == ItemStatus.SKIPPED:
        return []
    service = item.existing or Service.objects.create(folder=item.folder, name=item.name, service_id=item.service_id)
    replaced = []
    if item.status == ItemStatus.REPLACED:
        for old in service.versions.all():
            replaced += [name for name in (old.workbook.name, old.neuron.name) if name]
        service.versions.all().delete()
    for planned in item.versions:
        _add_version(service, planned, package_path, saved, author)
    return replaced


def _add_version(service: Service, planned, package_path: str, saved: list[str], author: str) -> None:
    source = planned.source
    metadata = source.metadata
    major, minor, patch = (int(part) for part in planned.version.split("."))
    version = ServiceVersion(
        service=service,
        version=planned.version,
        major=major,
        minor=minor,
        patch=patch,
        version_id=planned.version_id,
        release_note=metadata.get("release_note") or "",
        tags=metadata.get("tags") or [],
        effective_start_date=parse_datetime(metadata.get("effective_start_date") or ""),
        effective_end_date=parse_datetime(metadata.get("effective_end_date") or ""),
        compiler_version=metadata.get("compiler_version") or "",
        author=metadata.get("author") or author,
        workbook_name=os.path.basename(source.workbook.path),
        workbook_size=source.workbook.size,
        workbook_sha256=source.workbook.sha256,
        neuron_size=source.neuron.size,
        neuron_sha256=source.neuron.sha256,
    )
    for field, member, name in (
        (version.workbook, source.workbook, version.workbook_name),
        (version.neuron, source.neuron, "neuron.zip"),
    ):
        with open_member(package_path, member) as stream:
            field.save(name, File(stream, name=name), save=False)
        saved.append(field.name)
    version.save()


def import_job_run(job: ImportJob) -> None:
    """Apply a started job; failures end it `failed` with why (nothing imported)."""
    try:
        import_job_apply(job)
    except ImportCancelled:
        logger.info("import %s was cancelled while it ran; rolled back", job.pk)
    except ApplicationError as exc:
        import_job_fail(job.pk, exc.code, f"{exc.message} Nothing was imported.")
    except OSError as exc:
        import_job_fail(job.pk, "STORAGE_ERROR", f"Writing storage failed ({exc}); nothing was imported.")


def import_job_cancel(job: ImportJob, *, caller) -> ImportJob:
    """created/in_progress → cancelled; a running import is rolled back before it commits."""
    if not job_transition(ImportJob, job.pk, ACTIVE_STATES, status=JobStatus.CANCELLED, finished_at=timezone.now()):
        job.refresh_from_db()
        raise Conflict(
            f"Import job {job.pk} has already finished with status '{job.status}', so it cannot be cancelled.",
            code="JOB_NOT_CANCELLABLE",
            details={"status": job.status},
        )
    job.refresh_from_db()
    audit_record(job=job, action=AuditAction.CANCELLED, caller=caller)
    return job


def import_job_rerun(job: ImportJob, *, caller) -> ImportJob:
    """A new import of the same stored upload with the same request, through the same checks."""
    if not job.upload or not package_storage().exists(job.upload.name):
        raise Conflict(
            f"Import job {job.pk} kept no upload (a dry run, or purged after the retention "
            "period); upload the package again.",
            code="UPLOAD_EXPIRED",
        )
    audit_record(job=job, action=AuditAction.RERUN, caller=caller)
    with local_path(package_storage(), job.upload.name) as path, open(path, "rb") as handle:
        return import_job_create(
            caller=caller,
            upload=File(handle, name=os.path.basename(path)),
            services_modify=job.services_modify,
            services_existing=job.services_existing,
            source_system=job.source_system,
            correlation_id=job.correlation_id,
        )
