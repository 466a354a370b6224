#!/usr/bin/env python3
"""API throughput: the status endpoints against a bare DRF view, served the same way, same run.

    .venv/bin/python benchmarks/api_throughput.py                 # 3 rounds × 6 s per endpoint
    .venv/bin/python benchmarks/api_throughput.py --rounds 5 --duration 10

Like benchmarks/load_test.py (whose Stack it reuses) it creates a scratch PostgreSQL database
(`sparkexport_bench_api`, dropped at the end), a private redis-server, migrates, seeds tenant
`bench` with the demo catalog and an API key, and starts `gunicorn --workers 2` (sync) on
`CONN_MAX_AGE=60` plus an rqworker, which packages 5 exports of the `pricing` folder (6
versions each) so the status documents are the real, closed ones with a download link.
gunicorn runs with DJANGO_SETTINGS_MODULE=benchmarks.bench_settings: the product's settings
and URLs plus `bare/` (benchmarks/bench_urls.py), a DRF APIView without auth returning a
small dict. The product itself never serves `bare/`.

Load comes from `wrk -t2 -c16` (apt-get install wrk) on the same machine. The three targets
run interleaved, round after round, so noise hits them alike:

    bare                    GET /bare/
    bare-db (one row, A6)   GET /bare-db/bench: RetrieveAPIView over one row, no auth
                            (the reference notes' Table A6 floor, on PostgreSQL; for context)
    GET export/{id}/status  API key auth, one closed job of 6 versions
    GET export/status       API key auth, the caller's 5 jobs of the past hour

It prints req/s, p50 and p99 per target and round, then the medians over the rounds and each
endpoint's req/s as a share of bare's (target ≥ 70 %, p99 ≤ 50 ms at 16 connections), and the
database queries of a poll (counted in-process against the same database): the first poll
after a change, which builds the status snapshots, / the polls after it, which wrk measures.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import TENANT, Stack, add_stack_arguments

JOBS = 5
TARGET_RATIO = 0.70
TARGET_P99_MS = 50.0

QUERY_COUNT_SCRIPT = """
import json
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from sparkexport import snapshots
client = Client(HTTP_X_SYNTHETIC_KEY={key!r}, HTTP_X_TENANT_NAME={tenant!r})
counts = {{}}
for name, url in {urls!r}:
    client.get(url)  # the key's last use recorded, the snapshot tokens started
    snapshots.store.clear()  # as after a change: the next poll reads the database
    polls = []
    for _ in range(2):  # the first builds the snapshots, the second is answered from them
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        polls.append(len(queries))
    counts[name] = polls
print(json.dumps(counts))
"""


class ApiStack(Stack):
    def __init__(self, args):
        super().__init__(args)
        self.env["DJANGO_SETTINGS_MODULE"] = "benchmarks.bench_settings"


def make_jobs(base: str, headers: dict, count: int) -> list[str]:
    """`count` closed exports of the pricing folder, one after the other (the job limit)."""
    ids = []
    with httpx.Client(headers=headers, timeout=30) as client:
        for _ in range(count):
            response = client.post(f"{base}/export", json={"inputs": {"folders": ["pricing"]}})
            response.raise_for_status()
            job_id = response.json()["id"]
            deadline = time.monotonic() + 60
            while (status := client.get(f"{base}/export/{job_id}/status").json()["status"]) != "closed":
                if status not in ("created", "in_progress") or time.monotonic() > deadline:
                    raise SystemExit(f"export {job_id} ended {status}")
                time.sleep(0.05)
            ids.append(job_id)
    return ids


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, headers: dict, duration: float, connections: int, threads: int) -> dict:
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)$", output, re.MULTILINE)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": to_ms(latency["50"]),
        "p99": to_ms(latency["99"]),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0),
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=6, help="seconds per target per round (default 6)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    add_stack_arguments(parser, "sparkexport_bench_api")
    args = parser.parse_args()
    if args.duration * args.rounds > 120 or args.connections > 64:
        parser.error("keep it bounded: duration × rounds ≤ 120 s, --connections ≤ 64")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install -y wrk)")

    stack = ApiStack(args)
    try:
        key = stack.start()
        origin = f"http://127.0.0.1:{stack.http_port}"
        base = f"{origin}/{TENANT}/api/v4"
        headers = {"x-synthetic-key": key, "x-tenant-name": TENANT}
        job_ids = make_jobs(base, headers, JOBS)
        targets = {
            "bare": (f"{origin}/bare/", {}),
            "bare-db (one row, A6)": (f"{origin}/bare-db/{TENANT}", {}),
            "GET export/{id}/status": (f"{base}/export/{job_ids[0]}/status", headers),
            "GET export/status": (f"{base}/export/status", headers),
        }
        for url, target_headers in targets.values():
            response = httpx.get(url, headers=target_headers)
            assert response.status_code == 200, (url, response.status_code, response.text[:300])
        script = QUERY_COUNT_SCRIPT.format(
            key=key, tenant=TENANT,
            urls=[(name, url.removeprefix(origin)) for name, (url, _) in targets.items()],
        )
        counts = json.loads(stack.manage("shell", "-c", script).strip().splitlines()[-1])

        print(f"gunicorn --workers 2 (sync) on 127.0.0.1:{stack.http_port}, PostgreSQL '{args.database}', "
              f"wrk -t{args.threads} -c{args.connections}, {args.rounds} rounds × {args.duration:g} s per target, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        for url, target_headers in targets.values():  # warm every gunicorn worker and connection
            wrk(url, target_headers, 1, args.connections, args.threads)
        results: dict[str, list[dict]] = {name: [] for name in targets}
        print(f"\n{'round':<6}{'target':<26}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
        for round_no in range(1, args.rounds + 1):
            for name, (url, target_headers) in targets.items():
                result = wrk(url, target_headers, args.duration, args.connections, args.threads)
                results[name].append(result)
                print(f"{round_no:<6}{name:<26}{result['rps']:>8.0f}{result['p50']:>9.1f}{result['p99']:>9.1f}"
                      f"{result['errors']:>8}  {result['socket_errors']}")

        def median(name, field):
            return statistics.median(r[field] for r in results[name])

        bare_rps = median("bare", "rps")
        print(f"\nmedians over {args.rounds} rounds (ratio = req/s ÷ bare's in the same round, median)")
        print(f"{'target':<26}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}{'queries':>11}  verdict")
        errored = False
        for name in targets:
            ratio = statistics.median(r["rps"] / b["rps"] for r, b in zip(results[name], results["bare"]))
            p99 = median(name, "p99")
            errors = sum(r["errors"] for r in results[name])
            reference = name.startswith("bare")
            ok = reference or (ratio >= TARGET_RATIO and p99 <= TARGET_P99_MS and not errors)
            errored |= bool(errors)
            verdict = "" if reference else ("ok" if ok else "MISSED") + (f", {errors} non-2xx" if errors else "")
            print(f"{name:<26}{median(name, 'rps'):>8.0f}{median(name, 'p50'):>9.1f}{p99:>9.1f}"
                  f"{ratio:>7.0%}{'%d / %d' % tuple(counts[name]):>11}  {verdict}")
        print(f"targets: ratio ≥ {TARGET_RATIO:.0%} of bare ({bare_rps:.0f} req/s), p99 ≤ {TARGET_P99_MS:.0f} ms")
        # A benchmark reports; it is not a gate. Only request errors make it fail.
        return 1 if errored else 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
