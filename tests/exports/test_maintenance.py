"""Operator commands on real data: reap, purge, verify and export_run; dry runs change nothing."""
import hashlib
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rq import Callback, SimpleWorker

from exports.building import work_file
from exports.lifecycle import job_start
from exports.maintenance import REAP_GRACE
from exports.purge import export_package_delete
from exports.models import ExportJob, ImportJob, JobStatus
from tests.factories import ServiceVersionFactory

pytestmark = pytest.mark.django_db


def run(command, *args):
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def post_export(api, capture, body=None) -> str:
    with capture(execute=True):
        response = api.post(api.api("export"), body or {"inputs": {"folders": ["pricing"]}}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["id"]


def age(job_id, **delta):
    """Make a job look older, as time would."""
    past = timezone.now() - timedelta(**delta)
    ExportJob.objects.filter(pk=job_id).update(created_at=past)
    if ExportJob.objects.get(pk=job_id).started_at:
        ExportJob.objects.filter(pk=job_id).update(started_at=past)


@pytest.fixture
def catalog(tenant):
    for version in ("1.0.0", "1.1.0"):
        ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing", service__name="quote", version=version)


@pytest.fixture
def closed_job(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks)
    SimpleWorker([redis_queue], connection=redis_queue.connection).work(burst=True)
    return ExportJob.objects.get(pk=job_id)


# --- exports_reap ------------------------------------------------------------------------


def test_reap_ends_a_job_that_outran_its_timeout_and_removes_its_partial_file(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks)
    job_start(ExportJob, job_id)
    age(job_id, minutes=20)
    work_file(job_id).parent.mkdir(parents=True, exist_ok=True)
    work_file(job_id).write_bytes(b"partial")

    out, _ = run("exports_reap")
    assert "would end as closed_by_timeout" in out and "Dry run" in out
    assert ExportJob.objects.get(pk=job_id).status == JobStatus.IN_PROGRESS
    assert work_file(job_id).exists()

    out, _ = run("exports_reap", "--apply")
    assert "1 stale job(s) ended" in out
    job = ExportJob.objects.get(pk=job_id)
    assert job.status == JobStatus.CLOSED_BY_TIMEOUT
    assert job.errors[0]["code"] == "JOB_TIMEOUT"
    assert not work_file(job_id).exists()
    assert api.post(api.api("export"), {"inputs": {"folders": ["pricing"]}}, format="json").status_code == 200


def test_reap_fails_a_job_whose_queue_entry_is_gone(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks)
    redis_queue.connection.flushdb()  # Redis restarted without persistence
    age(job_id, seconds=REAP_GRACE.total_seconds() + 5)

    out, _ = run("exports_reap", "--apply", "--json")

    report = json.loads(out)
    assert report["jobs"] == [{"id": job_id, "tenant": "acme", "status": "failed", "reason": report["jobs"][0]["reason"]}]
    job = ExportJob.objects.get(pk=job_id)
    assert job.status == JobStatus.FAILED
    assert job.errors[0]["code"] == "WORKER_LOST"
    assert "queue" in job.errors[0]["message"]


def test_reap_leaves_young_and_healthy_jobs_alone(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    young = post_export(api, django_capture_on_commit_callbacks)

    out, _ = run("exports_reap", "--apply")

    assert "0 stale job(s) ended" in out
    assert ExportJob.objects.get(pk=young).status == JobStatus.CREATED


def test_reap_fails_a_job_that_rq_failed(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks)
    redis_queue.empty()
    # The same RQ job id failing in a real worker, as when its horse is killed.
    redis_queue.enqueue("json.loads", "not json", job_id=job_id)
    SimpleWorker([redis_queue], connection=redis_queue.connection).work(burst=True)
    age(job_id, seconds=REAP_GRACE.total_seconds() + 5)

    run("exports_reap", "--apply")

    job = ExportJob.objects.get(pk=job_id)
    assert job.status == JobStatus.FAILED
    assert "JSONDecodeError" in job.errors[0]["message"]


def test_rq_failure_callback_records_the_failure_on_the_row(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks)
    job_start(ExportJob, job_id)
    redis_queue.empty()
    redis_queue.enqueue("json.loads", "x", job_id=job_id, on_failure=Callback("exports.jobs.on_export_job_failure"))

    SimpleWorker([redis_queue], connection=redis_queue.connection).work(burst=True)

    job = ExportJob.objects.get(pk=job_id)
    assert job.status == JobStatus.FAILED
    assert job.errors[0]["code"] == "WORKER_LOST"


def test_the_reaper_is_registered_to_run_every_minute():
    from django_rq.cron import DjangoCronScheduler

    scheduler = DjangoCronScheduler()
    scheduler.load_config_from_file("exports.cron")
    [job] = scheduler.get_jobs()
    assert job.func.__name__ == "reap_exports_job"
    assert job.interval == 60


# --- exports_purge -----------------------------------------------------------------------


def test_purge_deletes_old_packages_and_the_status_says_so(api, closed_job, client):
    package_path = Path(closed_job.package.path)
    url = api.get(api.api(f"export/{closed_job.pk}/status")).json()["outputs"]["files"][0]["file"]
    ExportJob.objects.filter(pk=closed_job.pk).update(finished_at=timezone.now() - timedelta(days=8))

    out, _ = run("exports_purge")
    assert "Would delete 1 package(s)" in out
    assert package_path.exists()

    out, _ = run("exports_purge", "--older-than", "7d", "--apply")
    assert "Deleted 1 package(s)" in out
    assert not package_path.exists()
    status = api.get(api.api(f"export/{closed_job.pk}/status")).json()
    assert status["status"] == "closed"
    assert status["outputs"]["files"] == []
    assert status["errors"][0]["code"] == "PACKAGE_EXPIRED"
    gone = client.get(url)
    assert gone.status_code == 410
    assert gone.json()["code"] == "PACKAGE_EXPIRED"


def test_purge_keeps_recent_packages_and_can_delete_old_rows(closed_job):
    out, _ = run("exports_purge", "--older-than", "1h", "--delete-rows", "--apply", "--json")
    assert json.loads(out) == {"applied": True, "packages": 0, "uploads": 0, "bytes": 0, "rows": 0, "webhook_deliveries": 0}
    assert Path(closed_job.package.path).exists()

    ExportJob.objects.filter(pk=closed_job.pk).update(finished_at=timezone.now() - timedelta(hours=2))
    report = json.loads(run("exports_purge", "--older-than", "1h", "--delete-rows", "--apply", "--json")[0])
    assert report["packages"] == 1 and report["rows"] == 1 and report["bytes"] == closed_job.file_size
    assert not ExportJob.objects.filter(pk=closed_job.pk).exists()


def test_purge_rejects_a_bad_duration():
    with pytest.raises(CommandError):
        run("exports_purge", "--older-than", "a week")


# --- exports_verify ----------------------------------------------------------------------


def test_verify_reports_packages_whose_bytes_changed(closed_job):
    out, err = run("exports_verify")
    assert "1 package(s) verified, 0 damaged." in out
    assert "1/1 packages verified" in err

    path = Path(closed_job.package.path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CommandError, match="1 stored package"):
        run("exports_verify")


# --- export_run --------------------------------------------------------------------------


def test_export_run_writes_the_same_package_as_the_api(api, closed_job, tmp_path, tenant, redis_queue):
    target = tmp_path / "out.zip"

    out, err = run("export_run", "acme", "--folder", "pricing", "-o", str(target), "--json")

    report = json.loads(out)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == report["file_hash"] == closed_job.file_hash
    assert report["reused"] is True  # the API's identical package is still stored
    for job in ExportJob.objects.exclude(package=""):  # both jobs share the file
        export_package_delete(job)
    out, err = run("export_run", "acme", "--folder", "pricing", "-o", str(target), "--json")
    report = json.loads(out)
    assert report["reused"] is False
    assert hashlib.sha256(target.read_bytes()).hexdigest() == report["file_hash"] == closed_job.file_hash
    assert "(7/7 entries) packaged" in err and err.count("\n") == 1  # one bar, ended once
    assert zipfile.ZipFile(target).testzip() is None
    assert redis_queue.job_ids == []  # ran in-process, never queued
    job = ExportJob.objects.get(pk=report["id"])
    assert job.status == JobStatus.CLOSED and job.created_by == "export_run"


def test_export_run_goes_through_the_api_checks(catalog, tmp_path):
    with pytest.raises(CommandError, match="FOLDER_NOT_FOUND"):
        run("export_run", "acme", "--folder", "nope", "-o", str(tmp_path / "x.zip"))
    with pytest.raises(CommandError, match="Select something"):
        run("export_run", "acme", "-o", str(tmp_path / "x.zip"))
    assert not (tmp_path / "x.zip").exists()


def test_export_run_respects_the_job_limit(api, catalog, tmp_path, redis_queue, django_capture_on_commit_callbacks):
    post_export(api, django_capture_on_commit_callbacks)
    with pytest.raises(CommandError, match="JOB_LIMIT_REACHED"):
        run("export_run", "acme", "--service", "pricing/quote[1.0]", "-o", str(tmp_path / "x.zip"))


def test_every_maintenance_command_has_help():
    from django.core.management import load_command_class

    for name in ("exports_reap", "exports_purge", "exports_verify", "export_run"):
        command = load_command_class("exports", name)
        assert command.help
        assert "--json" in command.create_parser("manage.py", name).format_help()


def test_reap_also_ends_import_jobs_that_outran_their_timeout(tenant, redis_queue):
    job = ImportJob.objects.create(tenant=tenant, created_by="importer", status=JobStatus.IN_PROGRESS)
    ImportJob.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(minutes=30), started_at=timezone.now() - timedelta(minutes=30)
    )

    run("exports_reap", "--apply")

    job.refresh_from_db()
    assert job.status == JobStatus.CLOSED_BY_TIMEOUT
    assert "import did not finish" in job.errors[0]["message"]
