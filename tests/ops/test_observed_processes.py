"""Metrics, logs and probes of real processes: gunicorn with two workers and an rqworker
sharing one PROMETHEUS_MULTIPROC_DIR (one host), a worker serving its own /metrics (another
host), and a server whose database, Redis and storage are all gone."""
import json
import re
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.ops.conftest import label_values, parse_scrape, value
from tests.reliability.conftest import child_pids, free_port, seed_catalog, tenant_api
from tests.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

TOKEN = "e2e-metrics-token-3b9f1c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def scrape(url: str) -> dict:
    response = httpx.get(url, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    return parse_scrape(response.text)


def json_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def process_names(metrics_dir: Path) -> set[str]:
    """The process identifiers of the files in a multiprocess directory (counter_<name>.db, ...)."""
    return {re.fullmatch(r"[a-z]+_(.+)\.db", path.name).group(1) for path in metrics_dir.glob("*.db")}


def requests_counted_by(metrics_dir: Path, name: str, view: str) -> float:
    """What one process's own file says it answered for `view`."""
    files = [str(path) for path in metrics_dir.glob(f"counter_{name}.db")]
    return sum(
        sample.value for family in MultiProcessCollector.merge(files) for sample in family.samples
        if sample.name == "sparkexport_http_requests_total" and sample.labels.get("view") == view
    )


@pytest.fixture
def one_host(processes, private_redis, tenant, tmp_path):
    """gunicorn (2 sync workers) and an rqworker of the same host: one metrics directory, JSON
    logs, a Redis of their own (no other test's worker in its registry)."""
    for folder in ("pricing", "claims", "triage"):
        seed_catalog(tenant, 2, folder=folder)
    metrics_dir = tmp_path / "metrics"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "LOG_FORMAT": "json", "METRICS_TOKEN": TOKEN,
           "redis_url": private_redis.url}
    server = processes.server(workers=2, threads=1, **env)
    worker = processes.worker(**env)
    return server, worker, metrics_dir, processes


def test_metrics_need_the_token(one_host):
    server, *_ = one_host
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = httpx.get(f"{server.base_url}/metrics", headers=headers, timeout=30)
        assert response.status_code == 401, headers
        assert "sparkexport_" not in response.text
    assert value(scrape(f"{server.base_url}/metrics"), "sparkexport_auth_failures_total", scheme="metrics_token") == 3


def test_one_scrape_adds_up_both_gunicorn_workers(one_host):
    server, _, metrics_dir, _ = one_host
    gunicorn_workers = {str(pid) for pid in wait_for(lambda: len(child_pids(server.process.pid)) == 2 and child_pids(server.process.pid),
                                                     30, message="gunicorn's two workers")}
    sent = 0

    def both_answered() -> bool:
        nonlocal sent
        assert httpx.get(f"{server.base_url}/ready", timeout=30).status_code == 200
        sent += 1
        return all(requests_counted_by(metrics_dir, pid, "ready") for pid in gunicorn_workers)

    wait_for(both_answered, 120, interval=0, message="both gunicorn workers to answer /ready")
    for _ in range(4):  # whichever worker answers the scrape, it counts the other's requests too
        assert value(scrape(f"{server.base_url}/metrics"), "sparkexport_http_requests_total", view="ready", method="GET", status="200") == sent


def test_a_job_is_counted_by_the_server_and_the_worker_and_logged_by_both(one_host, tenant):
    server, worker, metrics_dir, processes = one_host
    api = tenant_api(server, tenant)
    metrics_url = f"{server.base_url}/metrics"
    before = scrape(metrics_url)
    job_ids = []
    for folder in ("pricing", "claims", "triage"):
        response = api.client.post(f"{api.base}/export", json={"inputs": {"folders": [folder]}, "correlation_id": f"ci-{folder}"},
                                   headers={"X-Request-ID": f"e2e-{folder}"})
        assert response.status_code == 200, response.text
        assert response.headers["X-Request-ID"] == f"e2e-{folder}"
        job_ids.append(response.json()["id"])
        api.wait_status(job_ids[-1], {"closed"}, timeout=120)

    def counted(status: str) -> bool:
        return value(scrape(metrics_url), "sparkexport_jobs_total", kind="export", status=status) == value(before, "sparkexport_jobs_total", kind="export", status=status) + 3

    wait_for(lambda: counted("closed") and counted("created") and counted("in_progress"), 60, message="the jobs to be counted")
    after = scrape(metrics_url)
    assert value(after, "sparkexport_job_duration_seconds_count", kind="export", status="closed") == 3
    assert value(after, "sparkexport_package_size_bytes_count", kind="export") == 3
    assert value(after, "sparkexport_workers", queue="exports") == 1
    assert value(after, "sparkexport_jobs_in_progress", kind="export", status="in_progress") == 0
    assert not {tenant.slug, *job_ids} & label_values(after)

    # Three jobs, three work horses: one file name for all of them, not one per horse.
    assert process_names(metrics_dir) <= {str(pid) for pid in child_pids(server.process.pid)} | {f"rqhorse-{worker.pid}", str(worker.pid)}

    request_lines = [line for line in json_lines(log_of(processes, server.process)) if line.get("event") == "request" and line["method"] == "POST"]
    for folder, job_id in zip(("pricing", "claims", "triage"), job_ids):
        [line] = [line for line in request_lines if line["request_id"] == f"e2e-{folder}"]
        assert (line["tenant"], line["job_id"], line["correlation_id"], line["status"]) == (tenant.slug, job_id, f"ci-{folder}", 200)
        worker_lines = [line for line in json_lines(log_of(processes, worker)) if line["job_id"] == job_id]
        assert {"sparkexport.jobs", "rq.worker"} <= {line["logger"] for line in worker_lines}
        assert all(line["correlation_id"] == f"ci-{folder}" and line["tenant"] == tenant.slug for line in worker_lines)
        assert [line["job_status"] for line in worker_lines if line.get("event") == "job"] == ["in_progress", "closed"]


def test_a_worker_on_another_host_serves_its_own_metrics(processes, private_redis, tenant, tmp_path):
    seed_catalog(tenant, 2)
    port = free_port()
    server = processes.server(redis_url=private_redis.url, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "web-host"))
    processes.worker(redis_url=private_redis.url, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "worker-host"), METRICS_PORT=str(port),
                     METRICS_ADDR="127.0.0.1", METRICS_TOKEN=TOKEN)
    worker_url = f"http://127.0.0.1:{port}/metrics"
    assert httpx.get(worker_url, timeout=30).status_code == 401
    api = tenant_api(server, tenant)
    job_id = api.post_export().json()["id"]
    api.wait_status(job_id, {"closed"}, timeout=120)
    wait_for(lambda: value(scrape(worker_url), "sparkexport_jobs_total", kind="export", status="closed") == 1, 60,
             message="the worker's own /metrics to count the job")
    web = scrape(f"{server.base_url}/metrics")
    assert value(web, "sparkexport_jobs_total", kind="export", status="created") == 1
    assert value(web, "sparkexport_jobs_total", kind="export", status="closed") == 0  # counted on the worker's host


def test_ready_names_every_dependency_that_is_gone_and_health_still_answers(processes, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("storage cannot be created under a file")
    server = processes.server(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/gone",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        MEDIA_ROOT=str(blocker / "media"),
    )
    health = httpx.get(f"{server.base_url}/health", timeout=30)
    assert (health.status_code, health.json()) == (200, {"status": "UP"})
    ready = httpx.get(f"{server.base_url}/ready", timeout=60)
    assert ready.status_code == 503
    assert ready.json() == {"status": "DOWN", "checks": {"database": "down", "redis": "down", "storage": "down"},
                            "failing": ["database", "redis", "storage"]}


def log_of(processes, process) -> Path:
    """The file the `processes` fixture sends a process's output to."""
    [log] = [log for started, log in processes.started if started is process]
    log.flush()
    return Path(log.name)
