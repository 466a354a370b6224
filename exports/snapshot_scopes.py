"""The snapshot scopes of export jobs, and which writes change them
(sparkexport/snapshots/writes.py announces every write of these models)."""
from exports.models import ExportJob, ExportJobVersion
from sparkexport.snapshots.writes import feeds_snapshots


def job_scope(job_id) -> str:
    """One export job's row and its versions: what its status document shows."""
    return f"export:{job_id}"


def tenant_jobs_scope(tenant_slug: str) -> str:
    """Every export job of a tenant: what GET export/status lists."""
    return f"exports:{tenant_slug}"


def _job_scopes(row: dict) -> list[str]:
    # No tenant once the tenant itself is being deleted: its jobs can no longer be read.
    return [job_scope(row["pk"]), tenant_jobs_scope(row["tenant__slug"]) if row["tenant__slug"] else None]


def connect() -> None:
    feeds_snapshots(ExportJob, lookups=("tenant__slug",), scopes_of=_job_scopes)
    feeds_snapshots(ExportJobVersion, lookups=("exportjob",), scopes_of=lambda row: [job_scope(row["exportjob"])])
