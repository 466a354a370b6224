"""The worker's side of an import: apply the planned services and versions and close the job,
in one transaction, all or nothing."""
import logging
import os

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.dateparse import parse_datetime

from exports.imports.plan import ItemStatus, PlannedService, import_plan_build, plan_outputs
from exports.imports.upload import upload_read
from exports.lifecycle import job_close, job_fail
from exports.models import ImportJob, package_storage
from exports.packages.reader import open_member
from sparkexport.errors import ApplicationError
from sparkexport.storage import local_path
from tenants.models import Service, ServiceVersion
from tenants.naming import parse_semver

logger = logging.getLogger(__name__)


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
        package = upload_read(path, job.tenant)
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
                if not job_close(ImportJob, job.pk, outputs=plan_outputs(plan)):
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
    major, minor, patch = parse_semver(planned.version)
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
        job_fail(ImportJob, job.pk, exc.code, f"{exc.message} Nothing was imported.")
    except OSError as exc:
        job_fail(ImportJob, job.pk, "STORAGE_ERROR", f"Writing storage failed ({exc}); nothing was imported.")
