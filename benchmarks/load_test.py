#!/usr/bin/env python3
"""Sustained mixed load on sparkexport as deployed: gunicorn with 2 workers on PostgreSQL, an
rqworker and a Redis, all on loopback. Not part of the test suite.

    .venv/bin/python benchmarks/load_test.py                  # 30 s, 16 clients
    .venv/bin/python benchmarks/load_test.py --duration 60 --clients 8

It creates a scratch PostgreSQL database (dropped at the end), starts a private redis-server
on a free port (so no shared Redis database is touched), migrates, seeds a tenant with the demo
catalog (limit 3 concurrent exports), starts gunicorn (`--workers 2`, sync, like `make run`)
and `rqworker exports imports`, then runs `--clients` threads for `--duration` seconds, each
picking a request at random:

    70 %  GET export/{id}/status   (one of the jobs created so far)
    20 %  GET export/status        (the tenant's job list)
    10 %  POST export              (one folder; 200 while under the limit, else 429)

It prints throughput, p50/p99 latency per kind, the status codes, errors (anything but 200,
and 429 JOB_LIMIT_REACHED on POST) and 5xx; exit status 1 if there was any error.
"""
import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Stack:
    """The scratch database, a private redis-server, gunicorn and a worker; stop() undoes all."""

    def __init__(self, args):
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="sparkexport-bench-"))
        self.redis_port, self.http_port = free_port(), free_port()
        self.processes: list[subprocess.Popen] = []
        self.admin_dsn = f"postgresql://{args.pg_user}@{args.pg_host}:{args.pg_port}/postgres"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{args.pg_user}@{args.pg_host}:{args.pg_port}/{args.database}",
            "DATABASE_CONN_MAX_AGE": "60",
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "MEDIA_ROOT": str(self.work / "media"),
            "DJANGO_SECRET_KEY": "load-test-only",
            "DJANGO_DEBUG": "0",
            "JOB_CREATE_RATE": args.job_create_rate,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }

    def _admin(self, sql: str) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "w")
        process = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def manage(self, *args) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300
        )
        if result.returncode:
            raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def start(self) -> str:
        """Everything up; answers the tenant's API key."""
        db = self.args.database
        self._admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{db}"')
        self._spawn("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", str(self.work)])
        self.manage("migrate", "--no-input", "-v", "0")
        self.manage("tenant_create", TENANT, "--export-job-limit", "3")
        self.manage("demo_seed", TENANT)
        key = json.loads(self.manage("apikey_create", TENANT, "--name", "bench-key", "--json"))["api_key"]
        self._spawn("gunicorn", [sys.executable, "-m", "gunicorn", "sparkexport.wsgi", "--bind",
                                 f"127.0.0.1:{self.http_port}", "--workers", "2"])
        self._spawn("worker", [sys.executable, "manage.py", "rqworker", "exports", "imports"])
        wait_for(self.healthy, 30, "gunicorn")
        return key

    def healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.http_port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        try:
            self._admin(f'DROP DATABASE IF EXISTS "{self.args.database}" WITH (FORCE)')
        finally:
            if self.args.keep_logs:
                print(f"logs kept in {self.work}")
            else:
                shutil.rmtree(self.work, ignore_errors=True)


class Load:
    def __init__(self, base: str, key: str):
        self.base = f"{base}/{TENANT}/api/v4"
        self.headers = {"x-synthetic-key": key, "x-tenant-name": TENANT}
        self.job_ids: list[str] = []
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.codes: dict[str, Counter] = defaultdict(Counter)
        self.errors: list[str] = []

    def record(self, kind: str, started: float, code, error: str | None) -> None:
        with self.lock:
            self.latencies[kind].append(time.perf_counter() - started)
            self.codes[kind][code] += 1
            if error:
                self.errors.append(f"{kind}: {error}")

    def one(self, client: httpx.Client) -> None:
        roll = random.random()
        with self.lock:
            job_id = random.choice(self.job_ids) if self.job_ids else None
        if roll < 0.10 or job_id is None:
            kind, request = "POST export", lambda: client.post(f"{self.base}/export", json={"inputs": {"folders": ["pricing"]}})
        elif roll < 0.30:
            kind, request = "GET export/status", lambda: client.get(f"{self.base}/export/status")
        else:
            kind, request = "GET export/{id}/status", lambda: client.get(f"{self.base}/export/{job_id}/status")
        started = time.perf_counter()
        try:
            response = request()
        except httpx.HTTPError as exc:
            self.record(kind, started, type(exc).__name__, f"{type(exc).__name__}: {exc}")
            return
        error = None
        if response.status_code == 200 and kind == "POST export":
            with self.lock:
                self.job_ids.append(response.json()["id"])
        elif response.status_code == 429 and kind == "POST export" and response.json().get("code") == "JOB_LIMIT_REACHED":
            pass
        elif response.status_code != 200:
            error = f"{response.status_code} {response.text[:200]}"
        self.record(kind, started, response.status_code, error)

    def run(self, clients: int, duration: float) -> float:
        stop_at = time.monotonic() + duration

        def client_loop():
            with httpx.Client(headers=self.headers, timeout=30) as client:
                while time.monotonic() < stop_at:
                    self.one(client)

        threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=duration + 60)
        return time.monotonic() - started

    def report(self, elapsed: float) -> int:
        total = sum(len(v) for v in self.latencies.values())
        fivexx = sum(n for c in self.codes.values() for code, n in c.items() if isinstance(code, int) and code >= 500)
        print(f"\n{total} requests in {elapsed:.1f} s: {total / elapsed:.0f} req/s overall")
        print(f"{'kind':<26}{'count':>7}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}  status codes")
        for kind in sorted(self.latencies):
            values = self.latencies[kind]
            codes = ", ".join(f"{code}×{n}" for code, n in sorted(self.codes[kind].items(), key=str))
            print(f"{kind:<26}{len(values):>7}{len(values) / elapsed:>8.0f}"
                  f"{percentile(values, 50) * 1000:>9.1f}{percentile(values, 99) * 1000:>9.1f}  {codes}")
        everything = [v for values in self.latencies.values() for v in values]
        print(f"{'all':<26}{total:>7}{total / elapsed:>8.0f}"
              f"{percentile(everything, 50) * 1000:>9.1f}{percentile(everything, 99) * 1000:>9.1f}")
        print(f"jobs accepted: {len(self.job_ids)}; errors: {len(self.errors)}; 5xx: {fivexx}")
        for error in self.errors[:10]:
            print("  ", error)
        return 1 if self.errors else 0


def add_stack_arguments(parser, database: str) -> None:
    """The options of the server stack the benchmarks start (scratch database, PostgreSQL, logs)."""
    parser.add_argument("--database", default=database, help="scratch database, dropped at the end")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", default="5432")
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--job-create-rate", default="100000/min",
                        help="the server's JOB_CREATE_RATE: high, so POSTs meet the job limit, not the rate limit")
    parser.add_argument("--keep-logs", action="store_true")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30, help="seconds of load (default 30)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads (default 16)")
    add_stack_arguments(parser, "sparkexport_bench")
    args = parser.parse_args()
    if args.duration > 600 or args.clients > 64:
        parser.error("keep it bounded: --duration ≤ 600, --clients ≤ 64")

    stack = Stack(args)
    try:
        key = stack.start()
        load = Load(f"http://127.0.0.1:{stack.http_port}", key)
        print(f"gunicorn --workers 2 on 127.0.0.1:{stack.http_port}, PostgreSQL '{args.database}', "
              f"{args.clients} clients for {args.duration:.0f} s, {os.cpu_count()} CPUs")
        elapsed = load.run(args.clients, args.duration)
        return load.report(elapsed)
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
