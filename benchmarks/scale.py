#!/usr/bin/env python3
"""Scale of selection: POST export of a 1,000-version folder in a 10,000-version tenant.

    .venv/bin/python benchmarks/scale.py
    .venv/bin/python benchmarks/scale.py --repeats 9

Creates a scratch PostgreSQL database (`sparkexport_bench_scale`, dropped at the end) and a
private redis-server (the jobs are enqueued for real; no worker runs, so they stay
`created`), migrates, and bulk-inserts tenant `bench`: 10 folders × 200 services × 5
versions = 2,000 services and 10,000 versions. Every version points at the same two tiny
stored files (POST export only reads metadata), with plausible sizes (60 KB workbook, 40 KB
Neuron package) and SHA-256 values. The tenant's job limit is raised so the repeats fit.

Measured **in-process** with the Django test client, after `gc.freeze()` of the loaded app as
the product's server does it (`sparkexport/wsgi.py`; `--no-gc-freeze` to see the difference).
No HTTP server, so the figure is the view's own time: parsing, resolution, job insert, `versions.set`, audit, the status
document): POST export of `folder-0` (1,000 versions), the median of `--repeats` (target
≤ 300 ms), against POST export of a 10-version folder as the baseline, with the database
queries of each (the count must be the same), and GET export/{id}/status of the
1,000-version job. Before each of these requests the process forgets its status snapshots
and kept selections (sparkexport/snapshots/), so each one resolves and reads as the first
request of its kind does; a repeat POST whose selection is kept is printed for context.
"""
import argparse
import gc
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import free_port

TENANT = "bench"
FOLDERS, SERVICES_PER_FOLDER, VERSIONS_PER_SERVICE = 10, 200, 5
TARGET_MS = 300.0


def seed(tenant_slug: str) -> str:
    """The catalog, bulk-inserted; answers an API key."""
    from tenants.models import Folder, Service, ServiceVersion
    from tenants.services import apikey_create, tenant_create

    tenant = tenant_create(slug=tenant_slug)
    tenant.export_api_job_limit = 1000
    tenant.save(update_fields=["export_api_job_limit"])
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    workbook = default_storage.save("bench/shared.xlsx", ContentFile(b"PK\x03\x04 shared workbook"))
    neuron = default_storage.save("bench/neuron.zip", ContentFile(b"PK\x03\x04 shared neuron"))
    folders = Folder.objects.bulk_create(
        [Folder(tenant=tenant, name=f"folder-{f}") for f in range(FOLDERS)]
        + [Folder(tenant=tenant, name="small")]
    )
    services = Service.objects.bulk_create(
        [Service(folder=folder, name=f"svc-{s}") for folder in folders[:FOLDERS] for s in range(SERVICES_PER_FOLDER)]
        + [Service(folder=folders[-1], name="svc-small")]
    )
    versions = []
    for index, service in enumerate(services):
        count = 10 if service.name == "svc-small" else VERSIONS_PER_SERVICE
        for v in range(count):
            digest = hashlib.sha256(f"{index}:{v}".encode()).hexdigest()
            versions.append(ServiceVersion(
                service=service, version=f"1.{v}.0", major=1, minor=v, patch=0, version_id=uuid.uuid4(),
                workbook=workbook, workbook_name=f"{service.name}.xlsx", workbook_size=60_000 + index % 997,
                workbook_sha256=digest, neuron=neuron, neuron_size=40_000 + index % 991, neuron_sha256=digest[::-1],
            ))
    ServiceVersion.objects.bulk_create(versions, batch_size=2000)
    return apikey_create(tenant=tenant, name="bench-key")[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="POSTs per selection (default 7, median)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one 1,000-version POST")
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="skip gc.freeze() after loading the app (what-if: sparkexport/wsgi.py freezes)")
    parser.add_argument("--database", default="sparkexport_bench_scale", help="scratch database, dropped at the end")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", default="5432")
    parser.add_argument("--pg-user", default="postgres")
    args = parser.parse_args()
    if not 1 <= args.repeats <= 50:
        parser.error("keep it bounded: 1 ≤ --repeats ≤ 50")

    work = Path(tempfile.mkdtemp(prefix="sparkexport-scale-"))
    redis_port = free_port()
    admin_dsn = f"postgresql://{args.pg_user}@{args.pg_host}:{args.pg_port}/postgres"
    env = {
        "DATABASE_URL": f"postgres://{args.pg_user}@{args.pg_host}:{args.pg_port}/{args.database}",
        "DATABASE_CONN_MAX_AGE": "60",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "MEDIA_ROOT": str(work / "media"),
        "DJANGO_SECRET_KEY": "scale-bench-only",
        "DJANGO_DEBUG": "0",
        "JOB_CREATE_RATE": "100000/min",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "sparkexport.settings",
    }
    os.environ.update(env)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(work)], stdout=subprocess.DEVNULL)
    try:
        # Migrate in a child process: a migration run leaves its project state behind, and a
        # heap hundreds of thousands of objects larger makes every full GC pass of the timed
        # requests slower than in a server worker.
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, check=True)
        import django

        django.setup()
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        started = time.perf_counter()
        key = seed(TENANT)
        seeded = time.perf_counter() - started
        client = Client(HTTP_X_SYNTHETIC_KEY=key, HTTP_X_TENANT_NAME=TENANT)
        client.get("/health")  # load the URLconf and views, as a server worker has
        if not args.no_gc_freeze:  # as the product's server does (sparkexport/wsgi.py)
            gc.collect()
            gc.freeze()
        api = f"/{TENANT}/api/v4"

        from sparkexport import snapshots

        def post(folder: str, *, resolve: bool = True):
            if resolve:  # forget the kept selections and documents: measure the first of its kind
                snapshots.store.clear()
            with CaptureQueriesContext(connection) as queries:
                began = time.perf_counter()
                response = client.post(f"{api}/export", {"inputs": {"folders": [folder]}}, content_type="application/json")
                elapsed = (time.perf_counter() - began) * 1000
            assert response.status_code == 200, response.content[:500]
            return elapsed, len(queries), response.json()

        post("small")  # warm: first use of the key, connections, imports
        results = {}
        for folder in ("small", "folder-0"):
            times, counts = [], set()
            for _ in range(args.repeats):
                elapsed, count, body = post(folder)
                times.append(elapsed)
                counts.add(count)
            results[folder] = (times, counts, len(body["outputs"]["service_versions"]), body["id"])
        kept_times = [post("folder-0", resolve=False)[0] for _ in range(args.repeats)]
        job_id = results["folder-0"][3]
        get_times = []
        for _ in range(args.repeats):
            snapshots.store.clear()
            began = time.perf_counter()
            response = client.get(f"{api}/export/{job_id}/status")
            get_times.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200

        from tenants.models import Service, ServiceVersion

        print(f"tenant '{TENANT}': {Service.objects.count()} services, {ServiceVersion.objects.count()} versions "
              f"(bulk-inserted in {seeded:.1f} s); PostgreSQL '{args.database}'; in-process Django test client; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
              + ("; no gc.freeze()" if args.no_gc_freeze else "; gc.freeze() after loading the app, as wsgi.py"))
        print(f"\n{'request':<44}{'versions':>9}{'median ms':>11}{'min':>7}{'max':>7}{'queries':>9}")
        for folder, label in (("small", "POST export, 10-version folder"), ("folder-0", "POST export, 1,000-version folder")):
            times, counts, versions, _ = results[folder]
            print(f"{label:<44}{versions:>9}{statistics.median(times):>11.0f}{min(times):>7.0f}{max(times):>7.0f}"
                  f"{'/'.join(map(str, sorted(counts))):>9}")
        print(f"{'GET export/{id}/status, 1,000 versions':<44}{1000:>9}{statistics.median(get_times):>11.0f}"
              f"{min(get_times):>7.0f}{max(get_times):>7.0f}")
        print(f"{'repeat POST, selection kept (for context)':<44}{1000:>9}{statistics.median(kept_times):>11.0f}"
              f"{min(kept_times):>7.0f}{max(kept_times):>7.0f}")
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(post, "folder-0")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        median = statistics.median(results["folder-0"][0])
        same = results["small"][1] == results["folder-0"][1] and len(results["small"][1]) == 1
        ratio = median / statistics.median(results["small"][0])
        print(f"\n1,000 versions: {median:.0f} ms ({ratio:.1f}× the 10-version POST): "
              f"{'ok' if median <= TARGET_MS else 'MISSED'} (target ≤ {TARGET_MS:.0f} ms); "
              f"query count {'the same' if same else 'DIFFERS'} for 10 and 1,000 versions")
        return 0 if median <= TARGET_MS and same else 1
    finally:
        from django.db import connections

        connections.close_all()
        redis.terminate()
        redis.wait(timeout=10)
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
