"""Workers on two hosts, as production runs them: PostgreSQL, Redis and S3 (moto's standalone
server) shared, no shared disk.

"host-a" and "host-b" are two `rqworker` processes with their own MEDIA_ROOT and scratch
directory (PACKAGE_WORK_DIR) and their own SPARKEXPORT_HOSTNAME, the setting production uses
where hosts (or containers with their own PID namespaces) share a system host name; the web
process has a third directory. Workers send a heartbeat every second (WORKER_HEARTBEAT_SECONDS
=1) so that a dead one is noticed in seconds, not the default 30.
"""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from exports.models import ExportJob, ImportJob, JobStatus
from tenants.models import Folder
from tests.e2e.conftest import ROOT, process_env
from tests.reliability.conftest import child_pids, pid_alive, seed_catalog, stop_process, tenant_api, wait_for
from tests.reliability.conftest_s3 import (  # noqa: F401 - fixtures
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    moto_server,
    point_storages_at_s3,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

HEARTBEAT = {"WORKER_HEARTBEAT_SECONDS": "1", "WORKER_MISSED_HEARTBEATS": "3"}


@pytest.fixture
def bucket(moto_server, settings):
    """One bucket for every process (catalog files at its root, packages under packages/)."""
    moto_server.ensure_running()
    name = f"spx-hosts-{uuid.uuid4().hex[:8]}"
    moto_server.client().create_bucket(Bucket=name)
    point_storages_at_s3(settings, moto_server, name, name)
    return {"AWS_STORAGE_BUCKET_NAME": name, "AWS_S3_ENDPOINT_URL": moto_server.url, "AWS_S3_REGION_NAME": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}


class Host:
    """A host's environment: its name and directories, the shared bucket."""

    def __init__(self, name, tmp_path, bucket):
        self.name = name
        self.scratch = tmp_path / name / "scratch"
        self.env = {"SPARKEXPORT_HOSTNAME": name, "MEDIA_ROOT": str(tmp_path / name / "media"),
                    "PACKAGE_WORK_DIR": str(self.scratch), **bucket, **HEARTBEAT}

    def scratch_files(self) -> list[str]:
        return sorted(path.name for path in self.scratch.iterdir()) if self.scratch.is_dir() else []

    def reap(self) -> dict:
        """`manage.py exports_reap --apply --json` as this host's cron runs it."""
        result = subprocess.run([sys.executable, "manage.py", "exports_reap", "--apply", "--json"], cwd=ROOT,
                                env={**process_env(), **self.env}, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def hosts(tmp_path, bucket):
    return Host("host-a", tmp_path, bucket), Host("host-b", tmp_path, bucket)


def kill_worker(worker) -> None:
    """SIGKILL of the worker and of its work horse (RQ puts the horse in a group of its own)."""
    [horse] = child_pids(worker.pid)
    os.killpg(worker.pid, signal.SIGKILL)
    os.killpg(horse, signal.SIGKILL)
    worker.wait(timeout=10)
    wait_for(lambda: not pid_alive(horse), 10, message="the work horse to die")


def reaped_by(host, model, job_id, timeout=60):
    """Run the host's reaper until it has ended the job; answers the job row."""
    def ended():
        host.reap()
        job = model.objects.get(pk=job_id)
        return job if job.status != JobStatus.IN_PROGRESS else None

    return wait_for(ended, timeout, interval=0.5, message=f"the reaper on {host.name} to end {job_id}")


def killed_and_reaped(worker, reaper_host, model, job_id):
    """SIGKILL `worker` mid-job; the reaper on the other host ends its job WORKER_LOST from the
    missed heartbeats within 30 s. Answers the job row."""
    kill_worker(worker)
    killed_at = time.monotonic()
    job = reaped_by(reaper_host, model, job_id)
    reaped_after = time.monotonic() - killed_at
    assert job.status == JobStatus.FAILED and job.errors[0]["code"] == "WORKER_LOST", job.errors
    assert "on host-a sent no heartbeat" in job.errors[0]["message"], job.errors
    assert reaped_after < 30
    print(f"{model.kind} reaped on {reaper_host.name} {reaped_after:.1f} s after the kill: {job.errors[0]['message']}")
    return job


def post_import(api, package: bytes) -> str:
    entity = {"services_existing": "add_version", "inputs": {"services_modify": [
        {"service_uri_source": f"pricing/svc{n}", "service_uri_destination": None, "update_version_type": "minor"}
        for n in range(4)
    ]}}
    response = api.client.post(f"{api.base}/import", data={"importRequestEntity": json.dumps(entity)},
                               files={"file": ("package.zip", package, "application/zip")})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def import_status(api, job_id) -> dict:
    return api.client.get(f"{api.base}/import/{job_id}/status").json()


def test_two_hosts_package_for_one_web_and_a_killed_workers_jobs_are_reaped_from_the_other(
    processes, hosts, tenant, other_tenant, tmp_path
):
    """Expected: exports packaged on host-a and on host-b, and an import applied on host-b, are
    served by the web process, which shares no disk with them. A worker on host-a SIGKILLed in
    the middle of an export, then of an import, is found dead by the reaper on host-b from its
    missed heartbeats (no PID check across hosts) within seconds: the job ends `failed`
    (WORKER_LOST, "sent no heartbeat"). What host-a's worker left in its scratch directory is
    removed by the next worker started on host-a; host-b's directory never holds it.
    """
    host_a, host_b = hosts
    seed_catalog(tenant, versions=8)
    Folder.objects.create(tenant=other_tenant, name="pricing")
    server = processes.server(MEDIA_ROOT=str(tmp_path / "web" / "media"), SPARKEXPORT_HOSTNAME="web",
                              **{k: v for k, v in host_a.env.items() if k.startswith("AWS_")})
    api, importer = tenant_api(server, tenant), tenant_api(server, other_tenant)

    packages = {}
    for host, version_filter in ((host_a, "latest"), (host_b, None)):
        worker = processes.worker(**host.env)
        body = {"inputs": {"folders": ["pricing"]}, **({"version_filter": version_filter} if version_filter else {})}
        response = api.post_export(body)
        assert response.status_code == 200, response.text
        status = api.wait_status(response.json()["id"], {"closed", "failed"}, timeout=90)
        assert status["status"] == "closed", status
        packages[host.name] = api.download_and_verify(status)
        if host is host_a:
            stop_process(worker)
    assert packages["host-a"] != packages["host-b"]

    import_id = post_import(importer, packages["host-b"])
    wait_for(lambda: import_status(importer, import_id)["status"] in ("closed", "failed"), 90,
             interval=0.3, message="the import on host-b")
    assert import_status(importer, import_id)["status"] == "closed", import_status(importer, import_id)
    stop_process(processes.started[-1][0])  # host-b's worker: what follows runs on host-a

    # An export on host-a, killed in the middle of packaging; host-b's reaper ends it.
    entry_log = tmp_path / "entries.log"
    worker = processes.worker(slow_read_seconds=0.5, entry_log=entry_log, **host_a.env)
    export_id = api.post_export({"inputs": {"folders": ["pricing"]}, "file_filter": "onpremises"}).json()["id"]
    wait_for(lambda: ExportJob.objects.get(pk=export_id).status == JobStatus.IN_PROGRESS
             and f"{export_id}.zip.partial" in host_a.scratch_files(), 60, message="host-a to be packaging")
    killed_and_reaped(worker, host_b, ExportJob, export_id)
    status = api.status(export_id).json()
    assert status["status"] == "failed" and status["outputs"]["files"] == []
    assert f"{export_id}.zip.partial" in host_a.scratch_files() and host_b.scratch_files() == []

    # An import on host-a, killed while it copies its package from S3; host-b's reaper ends it.
    worker = processes.worker(slow_read_seconds=5, SPX_SLOW_STORAGE_READS="1", **host_a.env)
    assert host_a.scratch_files() == []  # the new worker removed the killed export's partial file
    import_id = post_import(importer, packages["host-a"])
    wait_for(lambda: ImportJob.objects.get(pk=import_id).status == JobStatus.IN_PROGRESS
             and any(name.startswith(f"import-{import_id}-") for name in host_a.scratch_files()), 60,
             message="host-a to be copying the import's package")
    killed_and_reaped(worker, host_b, ImportJob, import_id)
    assert import_status(importer, import_id)["status"] == "failed"

    processes.worker(**host_a.env)
    assert host_a.scratch_files() == [] and host_b.scratch_files() == []
    assert httpx.get(f"{server.base_url}/health", timeout=5).status_code == 200
