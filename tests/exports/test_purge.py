"""The purge at scale: batches of bounded size, a run killed mid-batch finished by the next
one (every row cleared once, every file deleted), shared packages kept while named."""
import io
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exports import purge
from exports.models import ExportJob, ImportJob, JobStatus, package_storage
from exports.purge import exports_purge
from tests.admin.conftest import make_import, make_job

pytestmark = pytest.mark.django_db

WEEK = timedelta(days=7)
PACKAGE = b"PK\x05\x06 package"


@pytest.fixture
def batch_of_two(monkeypatch):
    monkeypatch.setattr(purge, "PURGE_BATCH", 2)


def stored(job, name=None, content=PACKAGE):
    """Give a job a stored package (named `name`, or its own)."""
    storage = package_storage()
    name = name or f"{job.tenant.slug}/{job.pk}.zip"
    if not storage.exists(name):
        storage.save(name, ContentFile(content))
    ExportJob.objects.filter(pk=job.pk).update(package=name, file_size=len(content))
    return name


def old_jobs(tenant, count, days=10):
    return [make_job(tenant, created_ago=timedelta(days=days)) for _ in range(count)]


def test_purge_goes_in_batches_and_reports_each_to_progress(tenant, batch_of_two):
    names = [stored(job) for job in old_jobs(tenant, 5)]
    recent = stored(make_job(tenant))
    batches = []
    with CaptureQueriesContext(connection) as captured:
        report = exports_purge(older_than=WEEK, apply=True, progress=batches.append)

    assert batches == [2, 2, 1]
    assert (report["packages"], report["bytes"]) == (5, 5 * len(PACKAGE))
    assert not any(package_storage().exists(name) for name in names)
    assert package_storage().exists(recent)
    batch_reads = [q["sql"] for q in captured.captured_queries
                   if q["sql"].startswith("SELECT") and '"finished_at" <' in q["sql"] and "COUNT(" not in q["sql"]]
    # Three batches and the read that finds none left, then the uploads' one: none past a batch.
    assert len(batch_reads) == 5 and all("LIMIT 2" in sql for sql in batch_reads)
    assert ExportJob.objects.filter(package="", package_expired_at__isnull=False).count() == 5


class Killed(BaseException):
    """What SIGKILL does to a run, as far as the database and storage can tell."""


def test_a_run_killed_mid_batch_is_finished_by_the_next_one(tenant, batch_of_two, monkeypatch):
    names = [stored(job) for job in old_jobs(tenant, 5)]
    storage = package_storage()
    delete, deleted = storage.delete, []

    def delete_then_die(name):
        if len(deleted) == 3:  # the second batch has deleted one of its two files
            raise Killed
        delete(name)
        deleted.append(name)

    first_run = timezone.now() - timedelta(minutes=5)
    with monkeypatch.context() as patch, pytest.raises(Killed):
        patch.setattr(type(storage), "delete", lambda self, name: delete_then_die(name))
        exports_purge(older_than=WEEK, apply=True, now=first_run)

    assert ExportJob.objects.filter(package_expired_at=first_run).count() == 2  # the first batch
    assert ExportJob.objects.exclude(package="").count() == 3  # the killed batch still names its files
    report = exports_purge(older_than=WEEK, apply=True)
    assert report["packages"] == 3
    assert ExportJob.objects.filter(package_expired_at=first_run).count() == 2  # cleared once, not again
    assert ExportJob.objects.filter(package="", package_expired_at__gt=first_run).count() == 3
    assert not any(storage.exists(name) for name in names)
    assert exports_purge(older_than=WEEK, apply=True)["packages"] == 0


def test_a_package_is_deleted_with_the_last_job_that_names_it(tenant, batch_of_two):
    first, second, third, fourth = old_jobs(tenant, 4)
    own = stored(first, "acme/1-own.zip")
    shared_by_old = stored(second, "acme/2-shared.zip")
    stored(third, shared_by_old)  # in the next batch of two: the first batch ends inside this name
    shared_with_recent = stored(fourth, "acme/3-recent.zip")
    stored(make_job(tenant), shared_with_recent)  # a repeat export within the retention
    batches = []

    exports_purge(older_than=WEEK, apply=True, progress=batches.append)

    assert batches == [2, 2]
    assert not package_storage().exists(own) and not package_storage().exists(shared_by_old)
    assert package_storage().exists(shared_with_recent)
    assert list(ExportJob.objects.exclude(package="").values_list("package", flat=True)) == [shared_with_recent]


def test_uploads_are_purged_in_batches_too(tenant, batch_of_two):
    storage = package_storage()
    jobs = [make_import(tenant, created_ago=timedelta(days=10)) for _ in range(3)]
    for job in jobs:
        name = storage.save(f"imports/{job.pk}.zip", ContentFile(b"upload"))
        ImportJob.objects.filter(pk=job.pk).update(upload=name, upload_size=6)
    batches = []

    report = exports_purge(older_than=WEEK, apply=True, progress=batches.append)

    assert (report["uploads"], batches) == (3, [2, 1])
    assert not ImportJob.objects.exclude(upload="").exists()


def test_old_rows_are_deleted_in_batches_and_active_ones_kept(tenant, batch_of_two):
    for job in old_jobs(tenant, 5, days=30):
        stored(job)
    make_job(tenant, status=JobStatus.IN_PROGRESS, created_ago=timedelta(days=30))
    recent = make_job(tenant)

    report = exports_purge(older_than=WEEK, apply=True, delete_rows=True)

    assert (report["packages"], report["rows"]) == (5, 5)
    assert set(ExportJob.objects.values_list("status", flat=True)) == {JobStatus.IN_PROGRESS, JobStatus.CLOSED}
    assert ExportJob.objects.filter(pk=recent.pk).exists() and ExportJob.objects.count() == 2


def test_the_command_shows_a_progress_bar_per_batch(tenant, batch_of_two):
    for job in old_jobs(tenant, 3):
        stored(job)
    out, err = io.StringIO(), io.StringIO()
    call_command("exports_purge", "--apply", stdout=out, stderr=err)
    assert "3/3 files deleted" in err.getvalue()
    assert "Deleted 3 package(s)" in out.getvalue()
