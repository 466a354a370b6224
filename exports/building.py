"""Building an export job's package and handing it to storage."""
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from exports.models import ExportJob, JobStatus, package_storage
from exports.packages.contents import package_entries, version_base
from exports.packages.format import NEURON_ENTRY_NAME
from exports.packages.writer import write_package
from exports.packages.reuse import content_key, reusable_package
from exports.lifecycle import job_close
from exports.scratch import work_file
from sparkexport.job_progress import ProgressReporter
from sparkexport.storage import publish_local_file
from tenants.models import ServiceVersion

# How often the worker looks at the row for a cancel while it packages.
STATUS_POLL_SECONDS = 0.2


class StopCheck:
    """should_stop for the packager: 'timeout' past the deadline, 'cancelled' once the row says so."""

    def __init__(self, job_id, deadline):
        self.job_id = job_id
        self.deadline = deadline
        self._last_poll = 0.0

    def __call__(self):
        if timezone.now() >= self.deadline:
            return "timeout"
        now = time.monotonic()
        if now - self._last_poll < STATUS_POLL_SECONDS:
            return None
        self._last_poll = now
        status = ExportJob.objects.filter(pk=self.job_id).values_list("status", flat=True).first()
        return None if status == JobStatus.IN_PROGRESS else "cancelled"


def package_name(job: ExportJob) -> str:
    return f"{job.tenant.slug}/{job.pk}.zip"


def export_job_package(job: ExportJob, on_progress=None) -> bool:
    """Write the job's package, store it and close the job; False if it was cancelled meanwhile.

    An identical package that is still stored is reused instead of written again. A new one
    is built in a work file and only handed to storage once complete, so no partial package
    is ever visible; the work file is removed whatever happens. Its progress is published as
    it goes (sparkexport/job_progress.py), and `on_progress` called with it (a command's bar).
    """
    tenant = job.tenant
    versions = list(job.versions.select_related("service__folder"))
    entries = package_entries(
        tenant_slug=tenant.slug,
        versions=versions,
        file_filter=job.file_filter,
        version_filter=job.version_filter,
        dependencies=job.dependencies,
        source_installation=settings.INSTALLATION_NAME,
    )
    key = content_key(entries)
    started = time.monotonic()
    progress = ProgressReporter(job.pk, entries_total=len(entries), bytes_total=sum(e.size for e in entries),
                                listener=on_progress)
    earlier = reusable_package(tenant.pk, key)
    if earlier is not None:
        progress.advance(entries=len(entries), bytes_=progress.progress.bytes_total)
        return _close(job, earlier.package.name, earlier.file_size, earlier.file_hash, started, key, progress)
    deadline = job.started_at + timedelta(seconds=tenant.job_timeout_seconds)
    partial = work_file(job.pk)
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(partial, "wb") as out:
            result = write_package(
                entries,
                out,
                should_stop=StopCheck(job.pk, deadline),
                max_size=tenant.max_package_bytes,
                on_entry=lambda entry: progress.advance(entries=1),
                on_bytes=lambda size: progress.advance(bytes_=size),
            )
        storage = package_storage()
        stored_name = publish_local_file(storage, str(partial), package_name(job))
    finally:
        partial.unlink(missing_ok=True)
    if _close(job, stored_name, result.size, result.sha256, started, key, progress):
        _record_crc32(versions, result.crc32)
        return True
    storage.delete(stored_name)
    return False


def _record_crc32(versions, crc32: dict[str, int]) -> None:
    """Versions added before CRC-32s were recorded get them from their first package, whose
    writer checked those bytes against their SHA-256: later exports then need no second hash."""
    for version in versions:
        base = version_base(version)
        known = {
            field: crc32.get(path)
            for field, path in (("workbook_crc32", f"{base}/{version.workbook_name}"),
                                ("neuron_crc32", f"{base}/{NEURON_ENTRY_NAME}"))
            if getattr(version, field) is None
        }
        if known := {field: crc for field, crc in known.items() if crc is not None}:
            ServiceVersion.objects.filter(pk=version.pk).update(**known)


def _close(job: ExportJob, package: str, size: int, sha256: str, started: float, key: str,
           progress: ProgressReporter) -> bool:
    """in_progress → closed with its package; False if the job was cancelled meanwhile."""
    return job_close(
        ExportJob, job.pk, package=package, file_size=size, file_hash=sha256,
        zip_process_time_ms=int((time.monotonic() - started) * 1000), content_key=key, progress=progress.finished(),
    )
