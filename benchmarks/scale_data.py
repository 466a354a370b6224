#!/usr/bin/env python3
"""A year of production in PostgreSQL: the data the scale targets are measured on (issue 14).

    .venv/bin/python benchmarks/scale_data.py --dry-run      # print what it would create, touch nothing
    .venv/bin/python benchmarks/scale_data.py                # create database sparkexport_scale, fill it
    .venv/bin/python benchmarks/scale_data.py --replace      # drop and refill it
    .venv/bin/python benchmarks/scale_data.py --scale 0.01   # 1 % of every count, for a quick try

100 tenants; 1,000,000 export jobs and 200,000 import jobs over the past year, half of each in
tenant `busy`; a realistic mix of outcomes, the newest few still created or in progress;
audit events, correlation ids, idempotency keys; every export job's selected versions
(exports_exportjob_versions, ~4 a job); `busy` holds 100,810 service versions in 1,000
folders (`folder-0000` has 1,000 of them, `folder-0001` 10). Catalog and accounts go through
the ORM (`bulk_create` in batches), the job tables through PostgreSQL's COPY; then VACUUM
ANALYZE, as autovacuum would have done on a year-old installation.

It refuses a database that already holds jobs (pass --replace). The stored files (one workbook
and one Neuron package that every version shares, as benchmarks/scale.py does) go to
--media-root. API keys and admin users have well-known secrets (`key_secret()`): never load
this data into an installation anyone can reach.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ADMIN_DSN, existing_django  # noqa: E402
from scale_rows import (  # noqa: E402
    AUDIT_COLUMNS, EXPORT_COLUMNS, EXPORT_OUTCOMES, IMPORT_COLUMNS, IMPORT_OUTCOMES, JOB_VERSION_COLUMNS, Clock,
    Creator, TenantCatalog, creation_times, export_job, import_job, outcome,
)

DATABASE = "sparkexport_scale"
MEDIA_ROOT = Path(tempfile.gettempdir()) / "sparkexport_scale" / "media"
BUSY = "busy"
SUPERUSER = "scale-admin"
BUSY_SUPERVISOR = "supervisor@busy.test"
CHUNK = 20_000  # jobs per COPY batch (one transaction each)
ACTIVE_EXPORTS, ACTIVE_IMPORTS = 12, 4  # the newest jobs, still created or in progress


def key_prefix(tenant_index: int, key_index: int) -> str:
    return f"s{tenant_index:03d}k{key_index:03d}"


def key_secret(prefix: str) -> str:
    """The API key string (`prefix.secret`) of a generated key: known, so benchmarks can call as it."""
    return f"{prefix}.scale-secret-{prefix}"


@dataclass(frozen=True)
class Plan:
    """What the generator creates, at `scale` (1.0 is the issue's year)."""

    scale: float

    def count(self, full: int) -> int:
        return max(1, round(full * self.scale))

    @property
    def tenants(self) -> int:
        return 100 if self.scale >= 0.1 else 10

    @property
    def exports(self) -> int:
        return self.count(1_000_000)

    @property
    def imports(self) -> int:
        return self.count(200_000)

    @property
    def busy_folders(self) -> int:
        return max(3, self.count(1_000))

    def lines(self) -> list[str]:
        busy_versions = 1_000 + 10 + (self.busy_folders - 2) * 100
        return [
            f"database {DATABASE!r} on {ADMIN_DSN.rsplit('/', 1)[0]}, stored files under {MEDIA_ROOT}",
            f"{self.tenants} tenants: '{BUSY}' and tenant-01 … tenant-{self.tenants - 1:02d}; API keys and a "
            f"supervisor each; superuser {SUPERUSER!r}",
            f"catalog: '{BUSY}' {self.busy_folders:,} folders, {busy_versions:,} versions (folder-0000: 1,000, "
            f"folder-0001: 10); every other tenant 3 folders, 36 versions",
            f"{self.exports:,} export jobs and {self.imports:,} import jobs over 365 days, half in '{BUSY}'; "
            f"outcomes {', '.join(f'{s} {p:.1%}' for s, p in EXPORT_OUTCOMES)}; the newest {ACTIVE_EXPORTS} "
            f"exports and {ACTIVE_IMPORTS} imports active",
            f"~{self.exports * 1.9 + self.imports * 1.05:,.0f} audit events, ~{self.exports * 4.4:,.0f} "
            "export job versions; packages of the past 7 days stored, older ones purged",
        ]


# --- the database ----------------------------------------------------------------------------


def prepare_database(replace: bool) -> None:
    """Create the database; refuse one that already holds jobs unless `replace`."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if exists and replace:
            conn.execute(f'DROP DATABASE "{DATABASE}" WITH (FORCE)')
        elif exists:
            jobs = existing_jobs()
            if jobs:
                sys.exit(f"Database {DATABASE!r} already holds {jobs:,} export jobs: pass --replace to drop "
                         "and regenerate it, or measure it as it is (benchmarks/scale_targets.py).")
            return
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


def existing_jobs() -> int:
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{DATABASE}"
    with psycopg.connect(dsn) as conn:
        table = conn.execute("SELECT to_regclass('exports_exportjob')").fetchone()[0]
        return conn.execute("SELECT count(*) FROM exports_exportjob").fetchone()[0] if table else 0


def copy_rows(table: str, columns: tuple[str, ...], rows) -> None:
    from django.db import connection

    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


# --- accounts and catalog (ORM) --------------------------------------------------------------


def create_accounts(plan: Plan) -> list:
    """Tenants, their API keys (busiest first) and supervisors, and a superuser."""
    from django.contrib.auth import get_user_model

    from tenants.models import ApiKey, Group, Membership, Tenant
    from tenants.selectors import hash_secret
    from tenants.services import DEFAULT_KEY_PERMISSIONS

    slugs = [BUSY] + [f"tenant-{index:02d}" for index in range(1, plan.tenants)]
    tenants = Tenant.objects.bulk_create([
        Tenant(slug=slug, export_api_job_limit=10 if slug == BUSY else 3,
               import_api_job_limit=4 if slug == BUSY else 2) for slug in slugs
    ])
    keys = []
    for index, tenant in enumerate(tenants):
        for number in range(20 if tenant.slug == BUSY else 2 + index % 5):
            prefix = key_prefix(index, number)
            keys.append(ApiKey(tenant=tenant, name=f"{tenant.slug}-pipeline-{number:02d}", prefix=prefix,
                               secret_hash=hash_secret(key_secret(prefix).split(".", 1)[1]),
                               permissions=DEFAULT_KEY_PERMISSIONS))
    ApiKey.objects.bulk_create(keys)
    User = get_user_model()
    User.objects.create_superuser(SUPERUSER, password=None)
    users = User.objects.bulk_create([
        User(username=BUSY_SUPERVISOR if t.slug == BUSY else f"supervisor@{t.slug}.test", is_staff=True) for t in tenants
    ])
    Membership.objects.bulk_create([
        Membership(tenant=t, user=u, group=Group.SUPERVISOR) for t, u in zip(tenants, users)
    ])
    return tenants


def create_catalog(tenant, folders: int, services: int, versions: int, *, stored: tuple[str, str]) -> None:
    """`folders` × `services` × `versions` in `tenant`, every version pointing at the shared files;
    in BUSY, folder-0000 holds 200 services × 5 versions and folder-0001 2 × 5."""
    from tenants.models import Folder, Service, ServiceVersion

    shape = {0: (200, 5), 1: (2, 5)} if tenant.slug == BUSY else {}
    folder_rows = Folder.objects.bulk_create(
        [Folder(tenant=tenant, name=f"folder-{n:04d}") for n in range(folders)], batch_size=5_000
    )
    service_rows = Service.objects.bulk_create([
        Service(folder=folder, name=f"svc-{s:03d}")
        for n, folder in enumerate(folder_rows) for s in range(shape.get(n, (services, versions))[0])
    ], batch_size=5_000)
    shapes = {folder.pk: shape.get(n, (services, versions))[1] for n, folder in enumerate(folder_rows)}
    rows = []
    for number, service in enumerate(service_rows):
        digest = hashlib.sha256(f"{tenant.slug}:{number}".encode()).hexdigest()
        for v in range(shapes[service.folder_id]):
            rows.append(ServiceVersion(
                service=service, version=f"1.{v}.0", major=1, minor=v, patch=0, workbook=stored[0],
                workbook_name=f"{service.name}.xlsx", workbook_size=60_000 + number % 997 * 40, workbook_sha256=digest,
                neuron=stored[1], neuron_size=40_000 + number % 991, neuron_sha256=digest[::-1], compiler_version="scale",
            ))
    ServiceVersion.objects.bulk_create(rows, batch_size=5_000)


def tenant_catalogs(tenants) -> list[TenantCatalog]:
    """What the job rows are drawn from: each tenant's creators and its catalog's version pks."""
    from django.contrib.auth import get_user_model

    from tenants.models import ApiKey, ServiceVersion

    catalogs = {}
    supervisors = {row[0]: row for row in get_user_model().objects.filter(tenant_memberships__isnull=False)
                   .values_list("tenant_memberships__tenant_id", "pk", "username")}
    for tenant in tenants:
        creators = [
            Creator(key.name, f"key:{key.pk}", f"API key '{key.name}' ({key.prefix})", key_id=key.pk)
            for key in ApiKey.objects.filter(tenant=tenant).order_by("name")
        ]
        _, user_pk, username = supervisors[tenant.pk]
        supervisor = Creator(username, f"session:{user_pk}.scale", f"admin session of {username}", user_id=user_pk)
        catalogs[tenant.pk] = (tenant, creators, [supervisor], {})
    versions = ServiceVersion.objects.order_by("service__folder__name", "service__name", "major", "minor", "patch")
    for tenant_id, folder, service, pk in versions.values_list(
        "service__folder__tenant_id", "service__folder__name", "service__name", "pk"
    ).iterator(chunk_size=10_000):
        catalogs[tenant_id][3].setdefault(folder, {}).setdefault(service, []).append(pk)
    return [TenantCatalog(t.pk, t.slug, creators, sups, folders) for t, creators, sups, folders in catalogs.values()]


# --- the jobs (COPY) -------------------------------------------------------------------------


def tenant_weights(catalogs: list[TenantCatalog]) -> list[float]:
    """Half the jobs are BUSY's; the rest fall on the other tenants, a few of them busier."""
    others = [1 / rank ** 0.8 for rank in range(1, len(catalogs))]
    return [sum(others)] + others


def statuses(rng: random.Random, count: int, active: int, outcomes) -> list[str]:
    """Oldest first: every job has finished but the newest `active` (created or in progress)."""
    finished = [outcome(rng, outcomes) for _ in range(count - active)]
    return finished + [("in_progress", "created")[n % 2] for n in range(min(active, count))]


def load_exports(rng, clock: Clock, catalogs, count: int, progress) -> None:
    from django.db import transaction

    times = creation_times(rng, count, clock.now)
    states = statuses(rng, count, ACTIVE_EXPORTS, EXPORT_OUTCOMES)
    tenants = rng.choices(catalogs, weights=tenant_weights(catalogs), k=count)
    for start in range(0, count, CHUNK):
        jobs, versions, events = [], [], []
        for n in range(start, min(start + CHUNK, count)):
            row, version_pks, job_events = export_job(rng, clock, tenants[n], times[n], states[n])
            jobs.append(row)
            versions += [(row[0], pk) for pk in version_pks]
            events += job_events
        with transaction.atomic():
            copy_rows("exports_exportjob", EXPORT_COLUMNS, jobs)
            copy_rows("exports_exportjob_versions", JOB_VERSION_COLUMNS, versions)
            copy_rows("exports_auditevent", AUDIT_COLUMNS, events)
        progress.advance(len(jobs))


def load_imports(rng, clock: Clock, catalogs, count: int, progress) -> None:
    from django.db import transaction

    times = creation_times(rng, count, clock.now)
    states = statuses(rng, count, ACTIVE_IMPORTS, IMPORT_OUTCOMES)
    tenants = rng.choices(catalogs, weights=tenant_weights(catalogs), k=count)
    for start in range(0, count, CHUNK):
        jobs, events = [], []
        for n in range(start, min(start + CHUNK, count)):
            row, job_events = import_job(rng, clock, tenants[n], times[n], states[n])
            jobs.append(row)
            events += job_events
        with transaction.atomic():
            copy_rows("exports_importjob", IMPORT_COLUMNS, jobs)
            copy_rows("exports_auditevent", AUDIT_COLUMNS, events)
        progress.advance(len(jobs))


def vacuum_and_sizes() -> list[tuple[str, int, int]]:
    """VACUUM ANALYZE every table; (table, rows, bytes with indexes) of the largest, and the database's size."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(
            "SELECT relname, n_live_tup, pg_total_relation_size(relid) FROM pg_stat_user_tables "
            "ORDER BY pg_total_relation_size(relid) DESC LIMIT 8"
        )
        tables = cursor.fetchall()
        cursor.execute("SELECT pg_database_size(current_database())")
        return tables + [("(whole database)", None, cursor.fetchone()[0])]


def stored_files() -> tuple[str, str]:
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    return (default_storage.save("catalog/scale/shared.xlsx", ContentFile(b"PK\x03\x04 shared workbook")),
            default_storage.save("catalog/scale/neuron.zip", ContentFile(b"PK\x03\x04 shared neuron")))


def generate(plan: Plan, seed: int) -> None:
    from django.core.management import call_command

    from sparkexport.progress import ProgressBar

    steps = time.perf_counter()
    call_command("migrate", verbosity=0)
    tenants = create_accounts(plan)
    stored = stored_files()
    for tenant in tenants:
        if tenant.slug == BUSY:
            create_catalog(tenant, plan.busy_folders, 20, 5, stored=stored)
        else:
            create_catalog(tenant, 3, 4, 3, stored=stored)
    catalogs = tenant_catalogs(tenants)
    print(f"accounts and catalog: {time.perf_counter() - steps:.0f} s", flush=True)
    rng, clock = random.Random(seed), Clock(datetime.now(timezone.utc))
    with ProgressBar(sys.stderr, plan.exports + plan.imports, "jobs", interval=1.0) as progress:
        load_exports(rng, clock, catalogs, plan.exports, progress)
        load_imports(rng, clock, catalogs, plan.imports, progress)
    print(f"jobs: {time.perf_counter() - steps:.0f} s so far; VACUUM ANALYZE …", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print what it would create and stop")
    parser.add_argument("--replace", action="store_true", help=f"drop database {DATABASE!r} first if it exists")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of every count (default 1.0)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    if not 0 < args.scale <= 1:
        parser.error("0 < --scale ≤ 1")
    plan = Plan(args.scale)
    print("\n".join(["Will create:", *(f"  - {line}" for line in plan.lines())]), flush=True)
    if args.dry_run:
        print("Dry run: nothing created.")
        return 0
    started = time.perf_counter()
    prepare_database(args.replace)
    existing_django(DATABASE, MEDIA_ROOT, REDIS_URL="", DJANGO_DEBUG="1", LOG_LEVEL="ERROR")
    generate(plan, args.seed)
    tables = vacuum_and_sizes()
    elapsed = time.perf_counter() - started
    print(f"\nDone in {elapsed / 60:.1f} min ({elapsed:.0f} s). Largest tables, with their indexes:")
    for name, rows, size in tables:
        print(f"  {name:<32}{'' if rows is None else f'{rows:>12,} rows'}{size / 2**20:>12,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
