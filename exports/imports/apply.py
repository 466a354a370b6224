"""The worker's side of an import: apply the planned services and versions and close the job,
in one transaction, all or nothing."""
import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.fields.files import FieldFile

from exports.imports.checks import CheckedImport, import_check, plan_options_of
from exports.imports.dependencies import xcalls_from_json
from exports.imports.plan import ItemStatus, PlannedService, PlannedVersion
from exports.imports.upload import upload_read
from exports.lifecycle import job_close, job_fail
from exports.models import ImportJob, package_storage
from exports.packages.reader import PackageFile, PackageMembers
from exports.scratch import import_copy_prefix, work_dir
from sparkexport.errors import ApplicationError
from sparkexport.job_progress import ProgressReporter
from sparkexport.storage import local_path
from tenants.catalog_xcalls import versions_xcalls_record
from tenants.models import Service, ServiceVersion
from tenants.naming import parse_semver

logger = logging.getLogger(__name__)

# Files stored at once: on a local disk creating a file costs more than writing a MiB to it,
# and each thread's bytes are on the move only 1 MiB at a time.
STORE_THREADS = 2


class ImportCancelled(Exception):
    """The job was cancelled while it was being applied; everything was rolled back."""


def import_job_apply(job: ImportJob, on_progress=None) -> dict:
    """Write the planned services and versions and close the job, in one transaction.

    On failure nothing stays: files are stored before the transaction commits and deleted
    if it does not; files of replaced versions are deleted only after it commits. Progress
    (the files stored, sparkexport/job_progress.py) is published as it goes, outside the
    transaction, and `on_progress` called with it (a command's bar).
    """
    storage = package_storage()
    saved: list[str] = []
    # A copy from S3 goes to this host's work dir, named for the job, so that the copy a killed
    # worker left is found and removed (exports/scratch.py).
    copy = {"work_dir": str(work_dir()), "prefix": import_copy_prefix(job.pk)}
    with local_path(storage, job.upload.name, **copy) as path, PackageMembers(path) as members:
        # Its SHA-256s were checked at upload: the files are checked by CRC-32 as they are stored.
        package = upload_read(path, job.tenant, hash_version_files=False)
        try:
            with transaction.atomic(), _store_threads() as store_threads:
                checked = import_check(
                    tenant=job.tenant, package=package, package_path=path, package_sha256=job.upload_sha256,
                    job_id=job.pk, known_xcalls=xcalls_from_json(job.workbook_xcalls), **plan_options_of(job),
                )
                progress = _progress_of(job, checked, on_progress)
                writing = _Writing(job, checked, members, saved, progress, store_threads)
                # Every file is handed to the store threads first: they store it while the
                # services before it are written to the database.
                started = [(item, writing.start(item)) for item in checked.plan]
                replaced_files = []
                for item, versions in started:
                    replaced_files += writing.service(item, versions)
                # Closing the job in the same transaction serialises it with a cancel: a
                # cancel that came first makes this update match nothing, and all is undone.
                if not job_close(ImportJob, job.pk, outputs=checked.outputs, warnings=checked.warnings,
                                 progress=writing.progress.finished(), workbook_xcalls=None):
                    raise ImportCancelled(job.pk)
                transaction.on_commit(lambda: [default_storage.delete(name) for name in replaced_files])
        except BaseException:
            for name in saved:
                default_storage.delete(name)
            raise
    return checked.outputs


@contextmanager
def _store_threads():
    """The threads that store an import's files, STORE_THREADS at once. On a failure the files
    not begun are left, and those begun finish first, so that `saved` lists each one stored."""
    threads = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="import-store")
    try:
        yield threads
    finally:
        threads.shutdown(wait=True, cancel_futures=True)


@dataclass
class _StartedVersion:
    """A version being written: its row, and its files' stores on the store threads."""

    planned: PlannedVersion
    row: ServiceVersion
    stores: list[Future]


@dataclass
class _Writing:
    """One job's writes: the checked import, the package's members, the files stored so far."""

    job: ImportJob
    checked: CheckedImport
    members: PackageMembers
    saved: list[str]
    progress: ProgressReporter
    store_threads: ThreadPoolExecutor

    def start(self, item: PlannedService) -> list[_StartedVersion]:
        """The rows (unsaved) of the versions a planned service writes, their files handed to
        the store threads."""
        if item.status in (ItemStatus.SKIPPED, ItemStatus.UNCHANGED):
            return []
        started = []
        for planned in item.versions:
            if planned.written:
                row = self.version(planned)
                stores = [self.store_threads.submit(self.store, file) for file in _files_of(row, planned)]
                started.append(_StartedVersion(planned, row, stores))
        return started

    def service(self, item: PlannedService, versions: list[_StartedVersion]) -> list[str]:
        """Write one planned service, once its versions' files are stored; answers the stored
        files of the versions it replaced."""
        if item.status in (ItemStatus.SKIPPED, ItemStatus.UNCHANGED):
            return []
        service = item.existing or Service.objects.create(folder=item.folder, name=item.name, service_id=item.service_id)
        replaced = []
        if item.status == ItemStatus.REPLACED:
            kept = [planned.version_id for planned in item.versions if planned.status == ItemStatus.UNCHANGED]
            old_versions = service.versions.exclude(version_id__in=kept)
            for old in old_versions:
                replaced += [name for name in (old.workbook.name, old.neuron.name) if name]
            old_versions.delete()
        for version in versions:
            for store in version.stores:
                store.result()  # raises its failure
            version.row.service = service
        rows = ServiceVersion.objects.bulk_create([version.row for version in versions])
        versions_xcalls_record([
            (row, self.checked.calls[version.planned.source.workbook.path]) for row, version in zip(rows, versions)
        ])
        return replaced

    def version(self, planned: PlannedVersion) -> ServiceVersion:
        """Its row (unsaved, its service not set yet) with its lineage."""
        lineage = self.checked.lineage.version_fields(job_id=self.job.pk, source_version_id=planned.source.version_id)
        return _new_version(planned, self.job.created_by, lineage)

    def store(self, file: tuple[FieldFile, PackageFile, str]) -> None:
        """One file of a version stored from its member (on a store thread)."""
        field, member, name = file

        def on_read(size):
            self.progress.advance(bytes_=size)

        with self.members.open(member, check_sha256=False, on_read=on_read) as stream:
            field.save(name, _MemberFile(stream, name=name), save=False)
        self.saved.append(field.name)
        self.progress.advance(entries=1)


def _new_version(planned: PlannedVersion, author: str, lineage: dict) -> ServiceVersion:
    """The row (unsaved) of a version the import writes, from its version.json."""
    source = planned.source
    details = source.details
    major, minor, patch = parse_semver(planned.version)
    return ServiceVersion(
        version=planned.version,
        major=major,
        minor=minor,
        patch=patch,
        version_id=planned.version_id,
        release_note=details.release_note,
        tags=list(details.tags),
        effective_start_date=details.effective_start_date,
        effective_end_date=details.effective_end_date,
        compiler_version=details.compiler_version,
        author=details.author or author,
        workbook_name=os.path.basename(source.workbook.path),
        workbook_size=source.workbook.size,
        workbook_sha256=source.workbook.sha256,
        workbook_crc32=source.workbook.crc32,
        neuron_size=source.neuron.size,
        neuron_sha256=source.neuron.sha256,
        neuron_crc32=source.neuron.crc32,
        **lineage,
    )


class _MemberFile(File):
    """A member handed to storage in 1 MiB chunks (Django's default, 64 KiB, costs more calls)."""

    DEFAULT_CHUNK_SIZE = 1 << 20


def _progress_of(job: ImportJob, checked: CheckedImport, on_progress) -> ProgressReporter:
    """The entries of an import are the files it stores: two per version it writes."""
    files = [member for item in checked.plan for planned in item.versions if planned.written
             for member in (planned.source.workbook, planned.source.neuron)]
    return ProgressReporter(job.pk, entries_total=len(files), bytes_total=sum(f.size for f in files),
                            listener=on_progress)


def _files_of(version: ServiceVersion, planned: PlannedVersion) -> list[tuple[FieldFile, PackageFile, str]]:
    """(its field, its member in the package, its name) of each file of a version."""
    source = planned.source
    return [(version.workbook, source.workbook, version.workbook_name), (version.neuron, source.neuron, "neuron.zip")]


def import_job_run(job: ImportJob, on_progress=None) -> None:
    """Apply a started job; failures end it `failed` with why (nothing imported)."""
    try:
        import_job_apply(job, on_progress)
    except ImportCancelled:
        logger.info("import %s was cancelled while it ran; rolled back", job.pk)
    except ApplicationError as exc:
        job_fail(ImportJob, job.pk, exc.code, f"{exc.message} Nothing was imported.")
    except OSError as exc:
        job_fail(ImportJob, job.pk, "STORAGE_ERROR", f"Writing storage failed ({exc}); nothing was imported.")
