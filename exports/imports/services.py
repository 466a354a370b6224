"""Import job services: check an upload and plan it, then queue the import (or answer a dry
run); re-run one. The worker applies it (exports/imports/apply.py); its states are the
lifecycle's (exports/lifecycle.py)."""
import os
import uuid

from django.core.files import File
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from exports.audit import audit_record
from exports.imports.checks import import_check, plan_options_of
from exports.imports.dependencies import xcalls_to_json
from exports.imports.upload import upload_read, upload_size_check
from exports.jobs import on_import_job_failure, run_import_job
from exports.lifecycle import (
    creator_fields, idempotent_job, job_created, job_created_finished, job_enqueue, job_limit_check,
    request_fingerprint,
)
from exports.models import AuditAction, ImportJob, JobStatus, package_storage
from sparkexport import queue
from sparkexport.errors import Conflict
from sparkexport.storage import local_path, publish_local_file, uploaded_file_path
from tenants.models import Tenant

# Options that count in a request's fingerprint only when set, so that a retry of a request
# sent before they existed still finds its job.
FINGERPRINTED_WHEN_SET = ("skip_unchanged", "allow_missing_dependencies")

def import_job_create(
    *,
    caller,
    upload,
    services_modify: list[dict],
    services_existing: str,
    source_system: str | None = None,
    correlation_id: str | None = None,
    skip_unchanged: bool = False,
    allow_missing_dependencies: bool = False,
    dry_run: bool = False,
    enqueue: bool = True,
    idempotency_key: str = "",
) -> ImportJob:
    """Check the upload and the plan, then queue the import (or, for a dry run, just answer the plan).

    A retry carrying the same `idempotency_key`, request and file gets the first job back.
    With enqueue=False the caller runs the job itself (the import_run command).
    """
    tenant = caller.tenant
    upload_size_check(tenant, upload.size)
    plan_options = {"services_modify": services_modify, "services_existing": services_existing,
                    "skip_unchanged": skip_unchanged, "allow_missing_dependencies": allow_missing_dependencies}
    options = {**plan_options, "source_system": source_system, "correlation_id": correlation_id}
    with uploaded_file_path(upload) as path:
        # The file's SHA-256: computed as a request's upload arrived, else in the same read.
        package = upload_read(path, tenant, file_sha256=getattr(upload, "sha256", None))
        upload_sha256 = package.sha256
        fingerprint = request_fingerprint({
            **{name: value for name, value in options.items() if value or name not in FINGERPRINTED_WHEN_SET},
            "dry_run": dry_run, "upload_sha256": upload_sha256,
        })
        if earlier := idempotent_job(ImportJob, caller, idempotency_key, fingerprint):
            return earlier
        job_id = uuid.uuid4()  # before the check: the ids the plan gives are derived from it
        checked = import_check(tenant=tenant, package=package, package_path=path,
                               package_sha256=upload_sha256, job_id=job_id, **plan_options)
        fields = {
            "id": job_id,
            **options,
            **creator_fields(caller, idempotency_key, fingerprint),
            "tenant": tenant,
            "upload_size": upload.size,
            "upload_sha256": upload_sha256,
            "outputs": checked.outputs,
            "warnings": checked.warnings,
            "workbook_xcalls": xcalls_to_json(checked.calls),
        }
        try:
            job, created = (_dry_run(fields), True) if dry_run else _create_and_queue(caller, fields, upload, path, enqueue)
        except IntegrityError:
            # A simultaneous retry with the same Idempotency-Key won the insert.
            if earlier := idempotent_job(ImportJob, caller, idempotency_key, fingerprint):
                return earlier
            raise
    if created:
        job_created(job, caller=caller)
    return job


def _dry_run(fields: dict) -> ImportJob:
    """A dry run is a job closed at once, its outputs the plan; nothing is queued or written."""
    now = timezone.now()
    with transaction.atomic():
        job = ImportJob.objects.create(**fields, dry_run=True, status=JobStatus.CLOSED, started_at=now, finished_at=now)
        job_created_finished(job)
    return job


def _create_and_queue(caller, fields: dict, upload, path: str, enqueue: bool) -> tuple[ImportJob, bool]:
    """(the job, its upload stored and queued at commit, True); (its twin's job, False) for a
    retry that waited for the tenant's lock."""
    tenant = caller.tenant
    storage = package_storage()
    stored_name = None
    try:
        with transaction.atomic():
            locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
            # A retry that waited for the lock finds the job its twin just created.
            if earlier := idempotent_job(ImportJob, caller, fields["idempotency_key"], fields["request_fingerprint"]):
                return earlier, False
            job_limit_check(ImportJob, locked)
            job = ImportJob.objects.create(**{**fields, "tenant": locked})
            stored_name = _store_upload(storage, upload, path, f"imports/{tenant.slug}/{job.pk}.zip")
            ImportJob.objects.filter(pk=job.pk).update(upload=stored_name)
            if enqueue:
                transaction.on_commit(lambda: job_enqueue(job, run_import_job, on_import_job_failure))
    except queue.QueueUnavailable:
        import_job_discard_upload(job)
        raise queue.unavailable_error() from None
    except BaseException:
        if stored_name:  # the row was rolled back with it
            storage.delete(stored_name)
        raise
    job.refresh_from_db()
    return job, True


def _store_upload(storage, upload, path: str, name: str) -> str:
    """The upload in storage under `name`: Django's temporary file of a request is moved there
    when storage is a local disk (no copy); any other file is copied."""
    if isinstance(upload, TemporaryUploadedFile):
        return publish_local_file(storage, path, name)
    with open(path, "rb") as handle:
        return storage.save(name, File(handle))


def import_job_discard_upload(job: ImportJob) -> None:
    """Delete the stored upload of a job (past retention, or when it could not be queued)."""
    name = ImportJob.objects.filter(pk=job.pk).values_list("upload", flat=True).first()
    if name:
        package_storage().delete(name)
        ImportJob.objects.filter(pk=job.pk).update(upload="")


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
            **plan_options_of(job),
            source_system=job.source_system,
            correlation_id=job.correlation_id,
        )
