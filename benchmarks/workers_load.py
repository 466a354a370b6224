#!/usr/bin/env python3
"""Workers at scale: 50 tenants export at once, with 1, 2 and 4 worker processes; then one
tenant's backlog ahead of 49 others (fairness). Not part of `make bench` (it takes ~10 min).

    .venv/bin/python benchmarks/workers_load.py                     # 1,2,4 workers, 3 rounds
    .venv/bin/python benchmarks/workers_load.py --workers 2 --rounds 1
    .venv/bin/python benchmarks/workers_load.py --fifo              # jobs in arrival order

A scratch PostgreSQL database (dropped at the end), a private redis-server, gunicorn
(`--workers 2 --threads 8`) and N `rqworker exports imports` processes, all on loopback.
Tenants `t00`..`t49` (job limit 1, the default) each hold a small real folder: 2 versions,
each a 1.5 MiB workbook of random bytes and a ~0.5 MB Neuron ZIP (a ~4 MB package); tenant
`backlog` holds --backlog (20) such folders and a job limit of as many.

Per round (jobs and packages of the previous round deleted first, so nothing is reused):
- uniform: 50 threads behind a barrier POST export, one per tenant; until every job ends.
  Jobs per minute (50 / first POST to last `closed`), p50/p99 from POST to `closed`
  (the rows' created_at and finished_at), the median job time (started_at to finished_at).
- skewed: `backlog` POSTs --backlog exports (one per folder), then 49 tenants at once. For
  each of the 49: its wait, and how many of `backlog`'s jobs started before it. Fair means at
  most one per worker: no tenant waits behind another's backlog for more than one job's
  time per worker. The workers are stopped while these POSTs arrive (and started after), so
  the queue holds the whole backlog ahead of the 49; waits count from the first job's start.
Medians over the rounds; the load average (1 min) at the end of each round.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from load_test import free_port, percentile, wait_for  # noqa: E402

TENANTS = [f"t{n:02d}" for n in range(50)]
BACKLOG = "backlog"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker process counts (default 1,2,4)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=20, help="the backlog tenant's job limit and backlog (default 20)")
    parser.add_argument("--fifo", action="store_true", help="QUEUE_TENANT_FAIR=0: jobs in arrival order")
    parser.add_argument("--skip-uniform", action="store_true")
    return parser.parse_args()


def clone_folder(source, tenant, name: str) -> None:
    """A copy of a folder's rows in another tenant or name, pointing at the same stored files
    (read-only for an export, so sharing them changes nothing but the seeding time)."""
    import uuid

    from tenants.models import Folder, Service

    folder = Folder.objects.create(tenant=tenant, name=name)
    for service in source.services.prefetch_related("versions"):
        copy = Service.objects.create(folder=folder, name=service.name)
        for version in service.versions.all():
            version.pk, version.service, version.version_id = None, copy, uuid.uuid4()
            version.save()


def seed(backlog: int) -> dict[str, str]:
    """The tenants, their folders and API keys; answers slug -> key."""
    from tenants.models import Folder, Tenant
    from tenants.services import apikey_create

    common.create_corpus(TENANTS[0], 2, folder="bench")
    source = Folder.objects.get(tenant__slug=TENANTS[0], name="bench")
    for slug in TENANTS[1:]:
        clone_folder(source, Tenant.objects.create(slug=slug), "bench")
    backlog_tenant = Tenant.objects.create(slug=BACKLOG, job_timeout_seconds=3600)
    for n in range(backlog):
        clone_folder(source, backlog_tenant, f"bench-{n}")
    Tenant.objects.filter(slug__in=TENANTS).update(export_api_job_limit=1)
    Tenant.objects.filter(slug=BACKLOG).update(export_api_job_limit=backlog)
    return {slug: apikey_create(tenant=Tenant.objects.get(slug=slug), name="bench")[1] for slug in [*TENANTS, BACKLOG]}


class Stack:
    """gunicorn and N workers on the scratch database and private Redis; stop() ends them."""

    def __init__(self, env: dict, work: Path):
        self.env, self.work = env, work
        self.web: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.base = ""

    def _spawn(self, name, args) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "a")
        return subprocess.Popen(args, cwd=common.ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start_web(self) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.web = self._spawn("gunicorn", [sys.executable, "-m", "gunicorn", "sparkexport.wsgi", "--bind",
                                            f"127.0.0.1:{port}", "--workers", "2", "--threads", "8"])

        def healthy():
            try:
                return httpx.get(f"{self.base}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, "gunicorn")

    def start_workers(self, count: int, connection) -> None:
        from rq import Worker

        self.workers = [self._spawn(f"worker-{n}", [sys.executable, "manage.py", "rqworker", "exports", "imports"])
                        for n in range(count)]
        wait_for(lambda: len(Worker.all(connection=connection)) == count, 60, f"{count} workers")

    def stop_workers(self, connection) -> None:
        from rq import Worker

        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            worker.wait(timeout=30)
        self.workers = []
        wait_for(lambda: not Worker.all(connection=connection), 30, "the workers to leave")

    def stop(self) -> None:
        for process in [*self.workers, self.web]:
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


def post(base: str, slug: str, key: str, folder: str, client: httpx.Client | None = None) -> str:
    client = client or httpx.Client(timeout=60)
    response = client.post(f"{base}/{slug}/api/v4/export", json={"inputs": {"folders": [folder]}},
                           headers={"x-synthetic-key": key, "x-tenant-name": slug})
    if response.status_code != 200:
        raise SystemExit(f"POST export for {slug}: {response.status_code} {response.text[:300]}")
    return response.json()["id"]


def post_at_once(base: str, keys: dict[str, str], slugs: list[str]) -> list[str]:
    barrier = threading.Barrier(len(slugs), timeout=60)
    ids, lock = [], threading.Lock()

    def one(slug):
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            job_id = post(base, slug, keys[slug], "bench", client)
        with lock:
            ids.append(job_id)

    threads = [threading.Thread(target=one, args=(slug,)) for slug in slugs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if len(ids) != len(slugs):
        raise SystemExit(f"only {len(ids)} of {len(slugs)} POSTs answered")
    return ids


def ended_rows(ids: list[str]) -> list:
    from exports.models import ACTIVE_STATES, ExportJob

    rows = ExportJob.objects.filter(pk__in=ids).select_related("tenant")
    wait_for(lambda: not rows.filter(status__in=ACTIVE_STATES).exists(), 900, "every job to end")
    rows = list(rows)
    failed = [row for row in rows if row.status != "closed"]
    if failed:
        raise SystemExit(f"{len(failed)} job(s) did not close: {failed[0].status} {failed[0].errors}")
    return rows


def forget_round() -> None:
    """Delete the jobs and packages of a round, so the next one packages again."""
    from django.conf import settings

    from exports.models import ExportJob

    ExportJob.objects.all().delete()
    shutil.rmtree(Path(settings.MEDIA_ROOT) / "packages", ignore_errors=True)


def seconds(delta) -> float:
    return delta.total_seconds()


def uniform_round(stack, keys) -> dict:
    rows = ended_rows(post_at_once(stack.base, keys, TENANTS))
    first = min(row.created_at for row in rows)
    span = seconds(max(row.finished_at for row in rows) - first)
    latency = [seconds(row.finished_at - row.created_at) for row in rows]
    return {"jobs_per_min": len(rows) / span * 60, "p50": percentile(latency, 50), "p99": percentile(latency, 99),
            "job_time": statistics.median(seconds(row.finished_at - row.started_at) for row in rows),
            "load": os.getloadavg()[0]}


def skewed_round(stack, keys, backlog: int, workers: int, connection) -> dict:
    """The posts arrive while no worker runs, so the queue holds the whole backlog ahead of
    the 49 as a busy installation's would; waits count from the first job's start."""
    stack.stop_workers(connection)
    with httpx.Client(timeout=60) as client:
        backlog_ids = [post(stack.base, BACKLOG, keys[BACKLOG], f"bench-{n}", client) for n in range(backlog)]
    other_ids = post_at_once(stack.base, keys, TENANTS[1:])
    stack.start_workers(workers, connection)
    rows = ended_rows(backlog_ids + other_ids)
    began = min(row.started_at for row in rows)
    backlog_starts = [row.started_at for row in rows if row.tenant.slug == BACKLOG]
    others = [row for row in rows if row.tenant.slug != BACKLOG]
    ahead = [sum(started < row.started_at for started in backlog_starts) for row in others]
    waits = [seconds(row.started_at - began) for row in others]
    return {"ahead_max": max(ahead), "wait_p50": percentile(waits, 50), "wait_max": max(waits),
            "job_time": statistics.median(seconds(row.finished_at - row.started_at) for row in rows),
            "load": os.getloadavg()[0]}


def main() -> None:
    args = arguments()
    work = Path(__import__("tempfile").mkdtemp(prefix="sparkexport-workers-"))
    with common.private_redis() as redis_url:
        common.REDIS_URL = redis_url
        with common.scratch_django("sparkexport_bench_workers"):
            import redis

            connection = redis.Redis.from_url(redis_url)
            started = time.monotonic()
            keys = seed(args.backlog)
            print(f"seeded {len(keys)} tenants in {time.monotonic() - started:.0f} s; {common.machine()}")
            env = {**common.child_env(), "QUEUE_TENANT_FAIR": "0" if args.fifo else "1", "JOB_CREATE_RATE": "1000/min"}
            stack = Stack(env, work)
            try:
                stack.start_web()
                for count in [int(n) for n in args.workers.split(",")]:
                    report(count, run_rounds(stack, keys, count, args, connection), args)
            finally:
                stack.stop()
    shutil.rmtree(work, ignore_errors=True)


def run_rounds(stack, keys, count, args, connection) -> dict[str, list[dict]]:
    stack.start_workers(count, connection)
    results = {"uniform": [], "skewed": []}
    try:
        for _ in range(args.rounds):
            if not args.skip_uniform:
                forget_round()
                results["uniform"].append(uniform_round(stack, keys))
            forget_round()
            results["skewed"].append(skewed_round(stack, keys, args.backlog, count, connection))
    finally:
        stack.stop_workers(connection)
    return results


def med(rounds: list[dict], field: str) -> float:
    return statistics.median(r[field] for r in rounds)


def report(count: int, results: dict, args) -> None:
    order = "FIFO" if args.fifo else "tenant-fair"
    if results["uniform"]:
        u = results["uniform"]
        print(f"{count} worker(s), 50 tenants at once ({order}, median of {len(u)}): "
              f"{med(u, 'jobs_per_min'):.0f} jobs/min, POST->closed p50 {med(u, 'p50'):.1f} s p99 {med(u, 'p99'):.1f} s, "
              f"job {med(u, 'job_time'):.2f} s, load {med(u, 'load'):.1f}")
    s = results["skewed"]
    print(f"{count} worker(s), backlog of {args.backlog} then 49 ({order}, median of {len(s)}): "
          f"others' wait p50 {med(s, 'wait_p50'):.1f} s max {med(s, 'wait_max'):.1f} s; backlog jobs started ahead "
          f"of one of them: max {med(s, 'ahead_max'):.0f} (fair: <= {count}), job {med(s, 'job_time'):.2f} s, "
          f"load {med(s, 'load'):.1f}", flush=True)


if __name__ == "__main__":
    main()
