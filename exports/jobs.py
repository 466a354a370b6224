"""The RQ entry points, for both queues: thin wrappers that take a job id, start the job and
call its work, so that the row always ends in a terminal state with the reason.

Services enqueue these functions themselves (exports/lifecycle.py `job_enqueue`), so "find
usages" leads here from every place a job is queued.
"""
import functools
import logging

from django.db import DatabaseError, connection as db_connection
from rq.timeouts import JobTimeoutException

from exports.building import export_job_package
from exports.imports.apply import import_job_run
from exports.lifecycle import job_fail, job_start, job_time_out
from exports.models import ExportJob, ImportJob
from exports.packages.writer import EntryChanged, PackageTooLarge, PackagingStopped
from sparkexport.logs import log_context
from sparkexport.snapshots import flush_pending
from sparkexport.storage import STORAGE_ERRORS

logger = logging.getLogger(__name__)


def _job_entry_point(run):
    """Every line the job logs names it (its tenant and correlation id too, once `job_start`
    has read them). A work horse ends with os._exit (no atexit): token replacements Redis
    refused during the job get their last try before it does."""

    @functools.wraps(run)
    def wrapped(job_id, *args, **kwargs):
        with log_context(job_id=str(job_id)):
            try:
                return run(job_id, *args, **kwargs)
            finally:
                flush_pending()

    return wrapped


@_job_entry_point
def run_export_job(job_id: str, on_progress=None) -> None:
    """Package one export job; the row always ends in a terminal state, with the reason."""
    job = job_start(ExportJob, job_id)
    if job is None:
        logger.info("export %s is no longer waiting (cancelled or gone); skipped", job_id)
        return
    timeout = job.tenant.job_timeout_seconds
    try:
        export_job_package(job, on_progress=on_progress)
    except PackagingStopped as stop:
        if stop.reason == "timeout":
            job_time_out(ExportJob, job.pk, timeout)
        else:
            logger.info("export %s stopped: %s", job_id, stop.reason)
    except JobTimeoutException:
        job_time_out(ExportJob, job.pk, timeout)
    except PackageTooLarge as exc:
        job_fail(ExportJob, job.pk, "PACKAGE_TOO_LARGE", f"{exc} Export fewer versions per job.")
    except EntryChanged as exc:
        job_fail(
            ExportJob,
            job.pk,
            "STORED_FILE_CHANGED",
            f"A stored file no longer matches its recorded SHA-256 ({exc}). "
            "Re-upload that service version.",
        )
    except STORAGE_ERRORS as exc:
        job_fail(ExportJob, job.pk, "STORAGE_ERROR", f"Reading or writing storage failed: {exc}.")
    except Exception as exc:
        job_fail(ExportJob, job.pk, "INTERNAL_ERROR", f"Packaging failed: {type(exc).__name__}: {exc}")
        raise


@_job_entry_point
def run_import_job(job_id: str, on_progress=None) -> None:
    """Apply one import job all or nothing; the row always ends in a terminal state."""
    job = job_start(ImportJob, job_id)
    if job is None:
        logger.info("import %s is no longer waiting; skipped", job_id)
        return
    try:
        import_job_run(job, on_progress)
    except STORAGE_ERRORS as exc:
        job_fail(ImportJob, job.pk, "STORAGE_ERROR", f"Reading or writing storage failed ({exc}); nothing was imported.")
    except Exception as exc:
        job_fail(ImportJob, job.pk, "INTERNAL_ERROR", f"Import failed: {type(exc).__name__}: {exc}. Nothing was imported.")
        raise


def _drop_dead_db_connection() -> None:
    """After a database restart this process's connection is dead: drop it, so the next query
    reconnects (a worker's horse has no request cycle that would do it)."""
    if db_connection.connection is not None and not db_connection.is_usable():
        db_connection.close()


def _stopped_because(exc_type, exc_value) -> str:
    _drop_dead_db_connection()
    return f"{exc_type.__name__}: {exc_value}" if exc_type else "the worker stopped"


def on_export_job_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: the horse was killed, the worker died or the database went away
    mid-job (so the job could not record its own failure); record it on the row."""
    reason = _stopped_because(exc_type, exc_value)
    if exc_type and issubclass(exc_type, DatabaseError):
        job_fail(ExportJob, job.id, "DATABASE_ERROR", f"The database connection was lost during the export ({exc_value}). Run it again.")
        return
    job_fail(ExportJob, job.id, "WORKER_LOST", f"The worker running this export stopped ({reason}).")


def on_import_job_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback for imports (killed horse, dead worker, lost database connection):
    the import's transaction was rolled back with it."""
    reason = _stopped_because(exc_type, exc_value)
    job_fail(ImportJob, job.id, "WORKER_LOST", f"The worker running this import stopped ({reason}); nothing was imported.")
