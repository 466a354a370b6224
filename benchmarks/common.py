"""Shared helpers of the packaging benchmarks: a scratch PostgreSQL database and MEDIA_ROOT,
Django set up on them, the benchmark corpus and the machine description.

API (small on purpose):
    scratch_django(db_name, *, keep=False)   context manager: creates the database and a temp
                                             MEDIA_ROOT, sets the environment, django.setup(),
                                             migrates; yields the temp dir; drops both at the end.
    child_env()                              the environment a subprocess needs to join them.
    existing_django(db_name, media_root, **env)  Django set up on a database that exists (kept as is),
                                             `env` overriding variables (REDIS_URL=...).
    private_redis()                          context manager: a redis-server of its own on a free
                                             port; yields its URL; stops it and closes Django's
                                             connections at the end.
    create_corpus(tenant_slug, versions, *, folder="bench", distinct_neurons=None) -> Corpus
    machine() -> dict                        nproc, CPU model, Python, zlib.
    median(values), fmt_row(...)             reporting.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = os.environ.get("BENCH_ADMIN_DSN", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
MiB = 1024 * 1024

WORKBOOK_SIZE = 3 * MiB // 2  # 1.5 MiB of random bytes: an already-compressed .xlsx
WASM_SIZE = 3 * MiB // 2      # 1.5 MiB module deflating ~3x -> a ~0.5 MB neuron.zip


def _env(db_name: str, media_root: Path) -> dict:
    return {
        "DJANGO_SETTINGS_MODULE": "sparkexport.settings",
        "DJANGO_SECRET_KEY": "benchmark-only",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": ADMIN_DSN.rsplit("/", 1)[0] + f"/{db_name}",
        "DATABASE_CONN_MAX_AGE": "0",
        "REDIS_URL": REDIS_URL,
        "MEDIA_ROOT": str(media_root),
        "SPARKEXPORT_DATA_DIR": str(media_root.parent / "data"),
        "LOG_LEVEL": "WARNING",
    }


_current_env: dict = {}


def child_env() -> dict:
    env = dict(os.environ)
    env.update(_current_env)
    env["PYTHONPATH"] = str(ROOT)
    return env


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)


@contextmanager
def scratch_django(db_name: str, *, keep: bool = False):
    """A scratch database and MEDIA_ROOT, with Django set up and migrated on them."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{db_name}-"))
    (tmp / "data").mkdir()
    _admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{db_name}"')
    try:
        _current_env.update(_env(db_name, tmp / "media"))
        os.environ.update(_current_env)
        sys.path.insert(0, str(ROOT))
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        yield tmp
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # pragma: no cover
            pass
        if not keep:
            _admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            shutil.rmtree(tmp, ignore_errors=True)


def existing_django(db_name: str, media_root: Path, **env: str) -> None:
    """Django set up on an existing database (not migrated, not dropped) and MEDIA_ROOT."""
    media_root.mkdir(parents=True, exist_ok=True)
    (media_root.parent / "data").mkdir(exist_ok=True)
    _current_env.update({**_env(db_name, media_root), **env})
    os.environ.update(_current_env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


@contextmanager
def private_redis():
    """A redis-server of this benchmark's own (no persistence), its URL yielded; at the end
    Django's database connections are closed and the server stopped."""
    import subprocess

    from load_test import free_port

    work = Path(tempfile.mkdtemp(prefix="sparkexport-redis-"))
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(work)], stdout=subprocess.DEVNULL)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # pragma: no cover
            pass
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def compressible_bytes(size: int, rng: random.Random) -> bytes:
    """Wasm-like bytes: a stream of short tokens with random runs; zlib level 6 gives ~3x."""
    tokens = [rng.randbytes(rng.randrange(2, 9)) for _ in range(128)]
    parts, total = [], 0
    while total < size:
        if rng.random() < 0.06:
            part = rng.randbytes(rng.randrange(16, 96))
        else:
            part = b"".join(rng.choices(tokens, k=64))
        parts.append(part)
        total += len(part)
    return b"".join(parts)[:size]


def neuron_package(wasm: bytes, stem: str) -> bytes:
    """A Neuron package as Spark ships it: a ZIP whose members are already deflated."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr(zipfile.ZipInfo(f"{stem}.wasm", (2024, 1, 1, 0, 0, 0)), wasm, zipfile.ZIP_DEFLATED)
        zf.writestr(zipfile.ZipInfo(f"{stem}.js", (2024, 1, 1, 0, 0, 0)), b"// loader\n" * 40, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def workbook_with_payload(service: str, version: str, payload: bytes) -> bytes:
    """A real workbook (the demo's, which openpyxl reads) carrying `payload` as an embedded part,
    stored, as workbooks with images or embedded objects do: it does not compress further."""
    from tenants.demo import make_demo_workbook

    base = zipfile.ZipFile(io.BytesIO(make_demo_workbook(service, version)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as workbook:
        for info in base.infolist():
            workbook.writestr(info, base.read(info))
        media = zipfile.ZipInfo("xl/media/image1.bin", (2024, 1, 1, 0, 0, 0))
        workbook.writestr(media, payload, zipfile.ZIP_STORED)
    return out.getvalue()


@dataclass
class Corpus:
    tenant_slug: str
    folder: str
    versions: int
    source_files: list[Path]  # every stored file the export reads
    source_bytes: int
    catalog_dir: Path         # MEDIA_ROOT/catalog: holds exactly these files
    wasm_ratio: float         # deflate level 6 ratio of the modules inside the Neuron packages


def create_corpus(tenant_slug: str, versions: int, *, folder: str = "bench", distinct_neurons: int | None = None,
                  max_package_bytes: int = 2 * 1024 * MiB, seed: int = 6, real_workbooks: bool = False) -> Corpus:
    """A tenant with `versions` compiled versions in one folder (10 versions per service), stored
    through the models' FileFields like the catalog does: per version a 1.5 MiB .xlsx of random
    bytes (with `real_workbooks`, a real workbook carrying them, which an import can read) and a
    ~0.5 MB neuron.zip (a real ZIP holding a 1.5 MiB module that deflates ~3x)."""
    from django.conf import settings
    from django.core.files.base import ContentFile

    from tenants.models import Folder, Service, ServiceVersion, Tenant

    rng = random.Random(seed)
    tenant, _ = Tenant.objects.get_or_create(slug=tenant_slug)
    tenant.max_package_bytes = max_package_bytes
    tenant.export_api_job_limit = 100
    tenant.job_timeout_seconds = 3600
    tenant.save()
    folder_row, _ = Folder.objects.get_or_create(tenant=tenant, name=folder)
    pool, ratios = [], []
    for n in range(versions):
        service_name = f"service-{n // 10:03d}"
        service, _ = Service.objects.get_or_create(folder=folder_row, name=service_name)
        if distinct_neurons is None or len(pool) < distinct_neurons:
            wasm = compressible_bytes(WASM_SIZE, rng)
            if len(ratios) < 5:
                ratios.append(len(wasm) / len(zlib.compress(wasm, 6)))
            pool.append(neuron_package(wasm, service_name))
        neuron = pool[n % len(pool)] if distinct_neurons else pool[-1]
        version = ServiceVersion(service=service, version=f"1.0.{n % 10}", major=1, minor=0, patch=n % 10)
        workbook = rng.randbytes(WORKBOOK_SIZE)
        if real_workbooks:
            workbook = workbook_with_payload(service_name, version.version, workbook)
        version.workbook_name = f"{service_name}.xlsx"
        version.workbook_size = len(workbook)
        version.workbook_sha256 = hashlib.sha256(workbook).hexdigest()
        version.workbook_crc32 = zlib.crc32(workbook)  # as an upload records it
        version.workbook.save(version.workbook_name, ContentFile(workbook), save=False)
        version.neuron_size = len(neuron)
        version.neuron_sha256 = hashlib.sha256(neuron).hexdigest()
        version.neuron_crc32 = zlib.crc32(neuron)
        version.neuron.save("neuron.zip", ContentFile(neuron), save=False)
        version.compiler_version = "bench"
        version.save()
    media = Path(settings.MEDIA_ROOT)
    files = []
    for v in ServiceVersion.objects.filter(service__folder=folder_row).order_by("pk"):
        files += [media / v.workbook.name, media / v.neuron.name]
    return Corpus(tenant_slug, folder, versions, files, sum(p.stat().st_size for p in files),
                  media / "catalog", statistics.median(ratios))


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:  # pragma: no cover
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(), "zlib": zlib.ZLIB_RUNTIME_VERSION}


def corpus_arguments(description: str) -> argparse.Namespace:
    """--versions and --rounds, as the corpus benchmarks take them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--versions", type=int, default=100, help="versions in the corpus (default 100, ~210 MB)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default 3)")
    return parser.parse_args()


def status_kib(field: str) -> int:
    """A field of this process's /proc status (VmHWM: its peak RSS), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def median(values) -> float:
    return statistics.median(values)
