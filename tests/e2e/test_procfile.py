"""The Procfile, started with `honcho start` as docs/deployment.md says: the web process answers,
a worker registers and packages a job, the reaper's cron scheduler registers; stopping honcho
stops them all."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis
from rq import Worker
from rq.cron import CronScheduler

from tests.e2e.conftest import ROOT, process_env
from tests.reliability.conftest import free_port, pid_alive, seed_catalog
from tests.waiting import wait_for
from tests.factories import make_api_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def descendants(pid: int) -> set[int]:
    children = {
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _parent_of(entry) == pid
    }
    return children.union(*(descendants(child) for child in children)) if children else set()


def _parent_of(entry: Path) -> int | None:
    try:
        return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_honcho_start_runs_web_worker_and_cron(tenant, tmp_path, settings):
    seed_catalog(tenant, versions=1)
    key = make_api_key(tenant, name="procfile")
    port = free_port()
    env = {**process_env(), "PORT": str(port), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    log = open(tmp_path / "honcho.log", "w")
    honcho = subprocess.Popen(
        [str(Path(sys.executable).parent / "honcho"), "start", "--no-prefix"], cwd=ROOT, env=env,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    connection = redis.Redis.from_url(settings.REDIS_URL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{base}/health"), 60, message="the web process")
        wait_for(lambda: Worker.all(connection=connection), 60, message="a worker to register")
        wait_for(lambda: CronScheduler.all(connection=connection), 60, message="the cron scheduler to register")
        headers = {"x-synthetic-key": key, "x-tenant-name": tenant.slug}
        job = httpx.post(f"{base}/{tenant.slug}/api/v4/export", json={"inputs": {"folders": ["pricing"]}}, headers=headers, timeout=30)
        assert job.status_code == 200, job.text
        status_url = job.json()["status_url"]
        wait_for(lambda: httpx.get(status_url, headers=headers, timeout=30).json()["status"] == "closed", 60, message="the job to close")
    finally:
        processes = descendants(honcho.pid)
        os.killpg(honcho.pid, signal.SIGTERM)
        honcho.wait(timeout=60)
        log.close()
    wait_for(lambda: not any(pid_alive(pid) for pid in processes), 60, message="every process to stop")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
