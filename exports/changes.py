"""What a write to export jobs changes for status snapshots (see sparkexport/snapshots.py).

Saves and deletes (the admin's and cascades included) are followed through the model
signals; the compare-and-set transitions and other `update()` writes call
`export_job_changed` themselves.
"""
from django.db.models.signals import post_delete, post_save

from exports.models import ExportJob
from sparkexport import snapshots
from tenants.changes import tenant_slug_of


def job_scope(job_id) -> str:
    """One export job's row and its versions: what its status document shows."""
    return f"export:{job_id}"


def tenant_jobs_scope(tenant_slug: str) -> str:
    """Every export job of a tenant: what GET export/status lists."""
    return f"exports:{tenant_slug}"


def _changed(job_id, tenant_slug: str | None) -> None:
    scopes = [job_scope(job_id)]
    if tenant_slug:  # None once the tenant itself is deleted: its jobs can no longer be read
        scopes.append(tenant_jobs_scope(tenant_slug))
    snapshots.scopes_changed(*scopes)


def export_job_changed(job_id) -> None:
    """After an `update()` of one export job's row."""
    if snapshots.writes_enabled():
        slug = ExportJob.objects.filter(pk=job_id).values_list("tenant__slug", flat=True).first()
        _changed(job_id, slug)


def _export_job_written(sender, instance, **kwargs):
    if snapshots.writes_enabled():
        _changed(instance.pk, tenant_slug_of(instance))


def connect() -> None:
    post_save.connect(_export_job_written, sender=ExportJob, dispatch_uid="snapshots-exportjob-save")
    post_delete.connect(_export_job_written, sender=ExportJob, dispatch_uid="snapshots-exportjob-delete")
