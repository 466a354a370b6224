"""A worker host's scratch directory: packages being built and imports' local copies of
packages stored on S3. Nothing in it is shared with another host; what a killed worker
left behind is removed by the next worker to start on the same host, or by the reaper
when it runs there.
"""
from pathlib import Path

from django.conf import settings

from exports.models import ACTIVE_STATES, ExportJob, ImportJob
from tenants.references import parse_uuid

EXPORT_SUFFIX = ".zip.partial"
IMPORT_PREFIX = "import-"


def work_dir() -> Path:
    """This host's scratch directory (PACKAGE_WORK_DIR, else MEDIA_ROOT/.partial)."""
    return Path(settings.PACKAGE_WORK_DIR or Path(settings.MEDIA_ROOT) / ".partial")


def work_file(job_id) -> Path:
    """Where an export job's package is built before it is handed to storage."""
    return work_dir() / f"{job_id}{EXPORT_SUFFIX}"


def import_copy_prefix(job_id) -> str:
    """How an import job's local copy of its package (stored on S3) is named: then a random part."""
    return f"{IMPORT_PREFIX}{job_id}-"


def _owner(path: Path):
    """(model, job id) of a scratch file, or None for a file that is not a job's."""
    if path.name.endswith(EXPORT_SUFFIX):
        return ExportJob, parse_uuid(path.name.removesuffix(EXPORT_SUFFIX))
    if path.name.startswith(IMPORT_PREFIX):
        return ImportJob, parse_uuid(path.name.removeprefix(IMPORT_PREFIX)[:36])
    return None


def orphan_work_files() -> list[Path]:
    """Scratch files of jobs that are no longer running (their worker was killed)."""
    directory = work_dir()
    owned: dict[type, dict] = {ExportJob: {}, ImportJob: {}}
    for path in directory.iterdir() if directory.is_dir() else ():
        owner = _owner(path)
        if owner is not None and owner[1] is not None:
            owned[owner[0]][owner[1]] = path
    orphans = []
    for model, files in owned.items():
        running = set(model.objects.filter(pk__in=files, status__in=ACTIVE_STATES).values_list("pk", flat=True))
        orphans += [path for job_id, path in files.items() if job_id not in running]
    return orphans


def orphan_work_files_remove() -> int:
    """Remove this host's orphan scratch files; answers how many."""
    orphans = orphan_work_files()
    for path in orphans:
        path.unlink(missing_ok=True)
    return len(orphans)
