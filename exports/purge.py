"""Retention: delete stored export packages and import uploads (and, if asked, job rows) past
it, and the webhook deliveries of that age.

Batch by batch, each read in the order of an index that holds only the files still stored, so
memory stays bounded and the cost follows what is due, not the history. A batch deletes its
files first, then clears its rows in one UPDATE: a run killed anywhere leaves the rows of its
batch still naming their files, deleted or not, and the next run deletes what is left (a
missing file is no error) and clears each row once. Nothing is lost and nothing counted twice.
"""
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Sum
from django.utils import timezone

from exports.models import ACTIVE_STATES, ExportJob, ImportJob, package_storage
from exports.webhooks.models import DeliveryStatus, WebhookDelivery

PURGE_BATCH = 500


@dataclass(frozen=True)
class StoredFiles:
    """One kind's stored files: the column naming each, its size, and what clearing it sets."""

    model: type
    field: str
    size_field: str
    expired_field: str | None  # set to the purge's time, so a status can say why it is gone
    shared: bool  # several jobs may name one file (a repeat export reuses the package)

    def due(self, cutoff):
        return finished_before(self.model, cutoff).exclude(**{self.field: ""})

    def cleared(self, now) -> dict:
        return {self.field: "", **({self.expired_field: now} if self.expired_field else {})}


PACKAGES = StoredFiles(ExportJob, "package", "file_size", "package_expired_at", shared=True)
UPLOADS = StoredFiles(ImportJob, "upload", "upload_size", None, shared=False)


def finished_before(model, cutoff):
    return model.objects.exclude(status__in=ACTIVE_STATES).filter(finished_at__lt=cutoff)


def _purge_batch(files: StoredFiles, rows: list[tuple], now) -> int:
    """Delete the files of `rows` (pk, name, size) that no other job names, then clear the
    rows; answers the bytes freed."""
    pks = [pk for pk, _, _ in rows]
    sizes = {name: size or 0 for _, name, size in rows}
    if files.shared:
        for name in files.model.objects.filter(**{f"{files.field}__in": list(sizes)}).exclude(pk__in=pks).values_list(
            files.field, flat=True
        ):
            sizes.pop(name, None)
    storage = package_storage()
    for name in sorted(sizes):
        storage.delete(name)
    files.model.objects.filter(pk__in=pks).update(**files.cleared(now))
    return sum(sizes.values())


def export_package_delete(job: ExportJob) -> int:
    """Delete one job's stored package now and mark it expired; the file stays while another
    job (a repeat export) still names it. Answers the bytes freed."""
    rows = list(ExportJob.objects.filter(pk=job.pk).exclude(package="").values_list("pk", "package", "file_size"))
    return _purge_batch(PACKAGES, rows, timezone.now()) if rows else 0


def _purge_files(files: StoredFiles, cutoff, now, progress) -> None:
    # Each batch starts where the last ended (at its last name: a row of another batch may
    # share it), so no batch walks again the index entries of the rows cleared before it.
    last = ""
    while rows := list(
        files.due(cutoff).filter(**{f"{files.field}__gte": last}).order_by(files.field)
        .values_list("pk", files.field, files.size_field)[:PURGE_BATCH]
    ):
        _purge_batch(files, rows, now)
        progress(len(rows))
        last = rows[-1][1]


def _delete_rows(model, cutoff) -> None:
    """The finished jobs older than `cutoff`, oldest first, a batch at a time (with their
    versions, by cascade)."""
    while pks := list(finished_before(model, cutoff).order_by("finished_at").values_list("pk", flat=True)[:PURGE_BATCH]):
        model.objects.filter(pk__in=pks).delete()


def _finished_deliveries_before(cutoff):
    """Webhook deliveries past retention, with their attempts (a pending one is still being sent)."""
    return WebhookDelivery.objects.exclude(status=DeliveryStatus.PENDING).filter(created_at__lt=cutoff)


def _delete_deliveries(cutoff) -> None:
    while pks := list(_finished_deliveries_before(cutoff).order_by("created_at").values_list("pk", flat=True)[:PURGE_BATCH]):
        WebhookDelivery.objects.filter(pk__in=pks).delete()


def exports_purge(
    *, older_than: timedelta, apply: bool, delete_rows: bool = False, now=None, progress=None
) -> dict:
    """Delete export packages and import uploads (and, with delete_rows, job rows) past retention.

    The report counts what was due when it started. `progress(n)` is called after each batch
    of n files.
    """
    now = now or timezone.now()
    cutoff = now - older_than
    due = {files: files.due(cutoff).aggregate(count=Count("*"), bytes=Sum(files.size_field)) for files in (PACKAGES, UPLOADS)}
    report = {
        "packages": due[PACKAGES]["count"],
        "uploads": due[UPLOADS]["count"],
        "bytes": sum(figures["bytes"] or 0 for figures in due.values()),
        "rows": sum(finished_before(model, cutoff).count() for model in (ExportJob, ImportJob)) if delete_rows else 0,
        "webhook_deliveries": _finished_deliveries_before(cutoff).count(),
    }
    if apply:
        for files in (PACKAGES, UPLOADS):
            _purge_files(files, cutoff, now, progress or (lambda count: None))
        _delete_deliveries(cutoff)
        if delete_rows:
            for model in (ExportJob, ImportJob):
                _delete_rows(model, cutoff)
    return report
