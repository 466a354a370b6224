#!/usr/bin/env python3
"""The scale targets of issue 14, measured on the year of data of benchmarks/scale_data.py.

    .venv/bin/python benchmarks/scale_data.py            # once (minutes)
    .venv/bin/python benchmarks/scale_targets.py         # every target, 20 timed runs each
    .venv/bin/python benchmarks/scale_targets.py --runs 5 --only admin
    .venv/bin/python benchmarks/scale_targets.py --explain   # and EXPLAIN (ANALYZE, BUFFERS) of each one's slowest reads of the history

Server time, in-process (the Django test client, no HTTP server, `gc.freeze()` after loading
the app as sparkexport/wsgi.py does), warm cache: one untimed run first, then `--runs` timed
runs; the median and the p99 (nearest rank: of 20 runs, the slowest). The query count comes
from one more run, captured apart so that recording SQL costs the timed runs nothing. Status
reads send `Cache-Control: no-cache`, so every one reads the database (the snapshot path runs no
SQL at all, docs/performance.md). Jobs that POST export creates are deleted at the end.
A private redis-server holds the queue and the snapshot tokens. `exports_purge` has its own
script, benchmarks/scale_purge.py (it changes the data).
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import existing_django, private_redis  # noqa: E402
from scale_data import BUSY, BUSY_SUPERVISOR, DATABASE, MEDIA_ROOT, SUPERUSER, key_prefix, key_secret  # noqa: E402

SMALL_SUPERVISOR = "supervisor@tenant-50.test"  # a tenant of about 2,800 export jobs


@dataclass
class Result:
    name: str
    target: str
    limit_ms: float | None
    statistic: str  # which figure the target bounds: "median" or "p99"
    times: list[float]
    queries: int
    slowest_reads: list[str]
    load: float
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def p99(self) -> float:
        ranked = sorted(self.times)
        return ranked[min(len(ranked) - 1, -(-99 * len(ranked) // 100) - 1)]

    @property
    def verdict(self) -> str:
        if self.limit_ms is None:
            return "context"
        return "met" if getattr(self, self.statistic) <= self.limit_ms else "MISSED"


@dataclass
class Bench:
    runs: int
    explain: bool
    results: list[Result] = field(default_factory=list)

    def measure(self, name, target, limit_ms, request, *, statistic="median", before=None, note="") -> Result:
        """Time `request()` (answering a response, or None) `runs` times after one warm-up run."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        def once() -> float:
            if before:
                before()
            began = time.perf_counter()
            response = request()
            elapsed = (time.perf_counter() - began) * 1000
            if response is not None:
                assert response.status_code == 200, (name, response.status_code, response.content[:300])
            return elapsed

        once()
        times = [once() for _ in range(self.runs)]
        load = os.getloadavg()[0]
        with CaptureQueriesContext(connection) as captured:
            once()
        queries = captured.captured_queries
        result = Result(name, target, limit_ms, statistic, times, len(queries), history_reads(queries)[:1], load, note)
        self.results.append(result)
        print(f"  {name}: median {result.median:.1f} ms, p99 {result.p99:.1f} ms, {len(queries)} queries, "
              f"load {load:.2f}", flush=True)
        if self.explain:
            for sql in history_reads(queries)[:3]:
                explain(name, sql)
        return result


HISTORY_TABLES = ("exports_exportjob", "exports_importjob", "exports_auditevent", "tenants_serviceversion")


def history_reads(queries) -> list[str]:
    """The reads of the long tables (jobs, audit events, versions), slowest first."""
    reads = [q for q in queries if q["sql"].lstrip().upper().startswith(("SELECT", "WITH"))
             and any(table in q["sql"] for table in HISTORY_TABLES)]
    return [q["sql"] for q in sorted(reads, key=lambda q: -float(q["time"]))]


def explain(name: str, sql: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        plan = "\n".join(f"      {row[0]}" for row in cursor.fetchall())
    print(f"    a read of '{name}':\n      {' '.join(sql.split())[:700]}\n{plan}\n", flush=True)


# --- the targets -----------------------------------------------------------------------------


def admin_targets(bench: Bench, samples: dict) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    clients = {}
    for who, username in (("superuser, 1,000,000 jobs", SUPERUSER), (f"supervisor of {BUSY}, 500,000 jobs", BUSY_SUPERVISOR)):
        clients[who] = Client()
        clients[who].force_login(get_user_model().objects.get(username=username))
    changelist = "/admin/exports/exportjob/"
    for who, client in clients.items():
        for label, query in (("unfiltered", {}), ("status failed", {"status__exact": "failed"}),
                             ("by creator", {"created_by__exact": samples["creator"]})):
            bench.measure(f"admin list, {label} ({who})", "≤ 150 ms", 150,
                          lambda client=client, query=query: client.get(changelist, query))
    superuser = clients["superuser, 1,000,000 jobs"]
    bench.measure("admin search by job id", "≤ 50 ms", 50, lambda: superuser.get(changelist, {"q": samples["job_id"]}))
    bench.measure("admin search by correlation id", "≤ 100 ms", 100,
                  lambda: superuser.get(changelist, {"q": samples["correlation_id"]}))
    bench.measure("admin job detail (100 versions)", "≤ 100 ms", 100,
                  lambda: superuser.get(f"{changelist}{samples['detail_id']}/change/"))
    small = Client()
    small.force_login(get_user_model().objects.get(username=SMALL_SUPERVISOR))
    bench.measure("admin list, unfiltered (supervisor of tenant-50)", "≤ 150 ms", 150, lambda: small.get(changelist))
    supervisor = clients[f"supervisor of {BUSY}, 500,000 jobs"]
    bench.measure(f"supervisor dashboard ({BUSY})", "≤ 300 ms", 300, lambda: supervisor.get(f"{changelist}dashboard/"))
    bench.measure("dashboard of a superuser (100 tenants)", "context", None, lambda: superuser.get(f"{changelist}dashboard/"))


def api_targets(bench: Bench, samples: dict, api) -> None:
    base = f"/{BUSY}/api/v4"
    bench.measure(f"GET export/status ({BUSY}, its busiest key)", "p99 ≤ 50 ms", 50,
                  lambda: api.get(f"{base}/export/status", HTTP_CACHE_CONTROL="no-cache"), statistic="p99")
    bench.measure("GET export/{id}/status", "p99 ≤ 50 ms", 50,
                  lambda: api.get(f"{base}/export/{samples['status_id']}/status", HTTP_CACHE_CONTROL="no-cache"),
                  statistic="p99")


def post_targets(bench: Bench, api) -> None:
    from exports.models import AuditEvent, ExportJob
    from sparkexport import snapshots
    from tenants.models import Tenant

    base = f"/{BUSY}/api/v4"
    limit = Tenant.objects.get(slug=BUSY).export_api_job_limit
    Tenant.objects.filter(slug=BUSY).update(export_api_job_limit=10_000)
    created = []

    def post(folder):
        response = api.post(f"{base}/export", {"inputs": {"folders": [folder]}}, content_type="application/json")
        created.append(response.json().get("id"))
        return response

    try:
        small = bench.measure("POST export, 10-version folder", "context", None, lambda: post("folder-0001"),
                              before=snapshots.store.clear)
        large = bench.measure("POST export, 1,000-version folder", "≤ 300 ms", 300, lambda: post("folder-0000"),
                              before=snapshots.store.clear)
        large.note = f"queries {large.queries} vs {small.queries} for 10: {'same' if large.queries == small.queries else 'DIFFER'}"
    finally:
        ids = [job_id for job_id in created if job_id]
        ExportJob.objects.filter(pk__in=ids).delete()
        AuditEvent.objects.filter(job_id__in=ids).delete()
        Tenant.objects.filter(slug=BUSY).update(export_api_job_limit=limit)


def reaper_target(bench: Bench) -> None:
    """The reaper's pass as the data has it, then with 200 more jobs in progress (made so for the
    measurement and put back): its cost follows the jobs in progress, not the history."""
    from django.db import connection

    from exports.maintenance import exports_reap
    from exports.models import ACTIVE_STATES, ExportJob, ImportJob

    active = sum(model.objects.filter(status__in=ACTIVE_STATES).count() for model in (ExportJob, ImportJob))
    bench.measure("reaper pass (exports_reap, dry run)", "≤ 200 ms", 200, lambda: exports_reap(apply=False) and None,
                  note=f"{active} jobs active")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE exports_exportjob SET status = 'in_progress' WHERE id IN (SELECT id FROM exports_exportjob "
                       "WHERE status = 'closed' ORDER BY created_at DESC LIMIT 200) RETURNING id")
        made_active = [row[0] for row in cursor.fetchall()]
    try:
        bench.measure("reaper pass, 200 more jobs in progress", "context", None,
                      lambda: exports_reap(apply=False) and None, note=f"{active + len(made_active)} jobs active")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE exports_exportjob SET status = 'closed' WHERE id = ANY(%s)", [made_active])


# --- set-up and report -----------------------------------------------------------------------


def sample_ids() -> dict:
    """Real rows to ask for: an old job (by id and by correlation id), a 100-version job for the
    detail page, a recent job of BUSY's busiest key, and that key's name (a creator)."""
    from exports.models import ExportJob

    busy_jobs = ExportJob.objects.filter(tenant__slug=BUSY)
    old = busy_jobs.filter(correlation_id__startswith=f"{BUSY}-pipeline-03-").order_by().values_list(
        "pk", "correlation_id").first()
    detail = busy_jobs.filter(version_filter="all", inputs__services=[]).order_by().values_list("pk", flat=True).first()
    key_name = f"{BUSY}-pipeline-00"
    recent = busy_jobs.filter(created_by=key_name, status="closed").exclude(package="").order_by("-created_at")
    return {"job_id": str(old[0]), "correlation_id": old[1], "detail_id": detail, "creator": key_name,
            "status_id": str(recent.values_list("pk", flat=True)[0])}


def report(results: list[Result]) -> None:
    print(f"\n{'what':<58}{'target':>13}{'median ms':>11}{'p99 ms':>9}{'queries':>9}{'load':>7}  verdict")
    for r in results:
        print(f"{r.name:<58}{r.target:>13}{r.median:>11.1f}{r.p99:>9.1f}{r.queries:>9}{r.load:>7.2f}  {r.verdict}"
              + (f" ({r.note})" if r.note else ""))


def environment_line() -> str:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    pending = MigrationExecutor(connection).migration_plan(MigrationExecutor(connection).loader.graph.leaf_nodes())
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'exports_exportjob'")
        jobs = cursor.fetchone()[0]
    return (f"database {DATABASE!r}: ~{jobs:,} export jobs; {os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.2f}; " + (f"{len(pending)} migration(s) NOT applied" if pending else "migrated"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per target (default 20)")
    parser.add_argument("--only", choices=("admin", "api", "post", "reaper"), action="append",
                        help="measure only these groups (repeatable)")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN (ANALYZE, BUFFERS) each target's slowest reads of the job tables")
    args = parser.parse_args()
    if not 1 <= args.runs <= 200:
        parser.error("1 ≤ --runs ≤ 200")
    with private_redis() as redis_url:
        existing_django(DATABASE, MEDIA_ROOT, REDIS_URL=redis_url, DATABASE_CONN_MAX_AGE="60",
                        JOB_CREATE_RATE="100000/min")
        from django.test import Client

        print(environment_line(), flush=True)
        samples = sample_ids()
        api = Client(HTTP_X_SYNTHETIC_KEY=key_secret(key_prefix(0, 0)), HTTP_X_TENANT_NAME=BUSY)
        api.get("/health")
        gc.collect()
        gc.freeze()  # as sparkexport/wsgi.py does after loading the app
        bench = Bench(args.runs, args.explain)
        groups = {"admin": lambda: admin_targets(bench, samples), "api": lambda: api_targets(bench, samples, api),
                  "post": lambda: post_targets(bench, api), "reaper": lambda: reaper_target(bench)}
        for name, run in groups.items():
            if not args.only or name in args.only:
                run()
        report(bench.results)
        return 0 if all(r.verdict != "MISSED" for r in bench.results) else 1


if __name__ == "__main__":
    sys.exit(main())
