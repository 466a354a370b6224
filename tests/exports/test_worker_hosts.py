"""Workers on several hosts: the host name a worker records, the reaper's verdict from
heartbeats alone for a worker on another host, and each host's scratch directory cleaned."""
import json
import socket
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from rq import Worker
from rq.job import Job, JobStatus as RQStatus

from exports.lifecycle import job_start
from exports.maintenance import stale_jobs
from exports.models import ExportJob, ImportJob, JobStatus
from exports.scratch import import_copy_prefix, work_dir, work_file
from exports.worker import ExportsWorker
from sparkexport.worker import HEARTBEAT_FIELD, RQ_HEARTBEAT_MARGIN, heartbeat_silence
from tests.conftest import SparkClient
from tests.e2e.conftest import ROOT
from tests.factories import ServiceVersionFactory, make_api_key

pytestmark = pytest.mark.django_db


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_the_host_name_comes_from_sparkexport_hostname_else_the_system():
    code = "import django; django.setup(); from django.conf import settings; print(settings.HOST_NAME)"
    env = {"DJANGO_SETTINGS_MODULE": "sparkexport.settings", "DJANGO_DEBUG": "1", "PATH": "/usr/bin:/bin"}
    named = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "SPARKEXPORT_HOSTNAME": " worker-7 "},
                           capture_output=True, text=True, check=True)
    assert named.stdout.strip() == "worker-7"
    unnamed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert unnamed.stdout.strip() == socket.gethostname()


@pytest.fixture
def host_a_worker(settings, redis_queue):
    """A worker registered by "host-a" with a 2 s heartbeat, whose PID means nothing here."""
    settings.HOST_NAME, settings.WORKER_HEARTBEAT_SECONDS = "host-a", 2
    worker = ExportsWorker([redis_queue], connection=redis_queue.connection)
    worker.register_birth()
    redis_queue.connection.hset(worker.key, "pid", dead_pid())
    return worker


def test_a_worker_records_its_host_and_heartbeat_interval(host_a_worker, redis_queue):
    restored = Worker.find_by_key(host_a_worker.key, connection=redis_queue.connection)
    assert restored.hostname == "host-a"
    assert host_a_worker.job_monitoring_interval == 2
    assert redis_queue.connection.hget(host_a_worker.key, HEARTBEAT_FIELD) == b"2"


@pytest.fixture
def job_on_host_a(host_a_worker, redis_queue, tenant, django_capture_on_commit_callbacks):
    """An export in progress, its RQ job started by host-a's worker, which just sent a heartbeat."""
    ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing")
    api = SparkClient(tenant.slug, make_api_key(tenant))
    with django_capture_on_commit_callbacks(execute=True):
        job_id = api.post(api.api("export"), {"inputs": {"folders": ["pricing"]}}, format="json").json()["id"]
    job_start(ExportJob, job_id)
    rq_job = Job.fetch(job_id, connection=redis_queue.connection)
    rq_job.worker_name = host_a_worker.name
    rq_job.save()
    rq_job.set_status(RQStatus.STARTED)
    host_a_worker.heartbeat(host_a_worker.job_monitoring_interval + RQ_HEARTBEAT_MARGIN)
    return job_id


def silence(worker, seconds: int) -> None:
    """As if the worker's last heartbeat was `seconds` ago (its key's TTL has run down that far)."""
    worker.connection.expire(worker.key, worker.job_monitoring_interval + RQ_HEARTBEAT_MARGIN - seconds)


def test_a_live_worker_on_another_host_is_not_judged_by_its_pid(job_on_host_a, host_a_worker, settings):
    settings.HOST_NAME, settings.WORKER_MISSED_HEARTBEATS = "host-b", 3
    silence(host_a_worker, 5)  # two heartbeats missed: not yet
    assert stale_jobs() == []
    silent_for, interval = heartbeat_silence(host_a_worker.connection, host_a_worker.key)
    assert interval == 2 and 4 <= silent_for <= 6


def test_the_pid_is_checked_only_on_the_workers_own_host(job_on_host_a, settings):
    settings.HOST_NAME = "host-a"
    [outcome] = stale_jobs()
    assert outcome.status == JobStatus.FAILED and "on this host) died" in outcome.reason


def test_a_worker_that_missed_its_heartbeats_is_dead_on_any_host(job_on_host_a, host_a_worker, settings):
    settings.HOST_NAME, settings.WORKER_MISSED_HEARTBEATS = "host-b", 3
    silence(host_a_worker, 7)
    out = StringIO()
    call_command("exports_reap", "--apply", "--json", stdout=out)
    [reaped] = json.loads(out.getvalue())["jobs"]
    assert reaped["id"] == job_on_host_a
    job = ExportJob.objects.get(pk=job_on_host_a)
    assert job.status == JobStatus.FAILED and job.errors[0]["code"] == "WORKER_LOST"
    assert "on host-a sent no heartbeat for 7 s (one is due every 2 s)" in job.errors[0]["message"]


def test_an_idle_or_undeclared_worker_has_no_heartbeat_silence(host_a_worker, redis_queue):
    host_a_worker.heartbeat()  # idle: RQ renews it for worker_ttl + 60 s
    assert heartbeat_silence(redis_queue.connection, host_a_worker.key)[0] == 0
    redis_queue.connection.hdel(host_a_worker.key, HEARTBEAT_FIELD)
    assert heartbeat_silence(redis_queue.connection, host_a_worker.key) is None


def test_a_worker_start_removes_its_hosts_scratch_files_of_jobs_no_longer_running(tenant, redis_queue, settings, tmp_path):
    settings.PACKAGE_WORK_DIR = str(tmp_path / "scratch")
    work_dir().mkdir()
    running, ended = (ExportJob.objects.create(tenant=tenant, created_by="ci", status=status)
                      for status in (JobStatus.IN_PROGRESS, JobStatus.FAILED))
    importing, imported = (ImportJob.objects.create(tenant=tenant, created_by="ci", status=status)
                           for status in (JobStatus.IN_PROGRESS, JobStatus.CLOSED))
    kept = [work_file(running.pk), work_dir() / f"{import_copy_prefix(importing.pk)}x1y2.zip", work_dir() / "notes.txt"]
    removed = [work_file(ended.pk), work_dir() / f"{import_copy_prefix(imported.pk)}a7b8.zip"]
    for path in kept + removed:
        path.write_bytes(b"scratch")

    ExportsWorker([redis_queue], connection=redis_queue.connection).work(burst=True)

    assert sorted(work_dir().iterdir()) == sorted(kept)
