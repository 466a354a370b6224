#!/usr/bin/env python3
"""`exports_purge` of 100,000 expired packages, on the data of benchmarks/scale_data.py: memory,
time, and a run killed in the middle that the next run finishes (issue 14).

    .venv/bin/python benchmarks/scale_purge.py                   # kill at 30 %, then resume
    .venv/bin/python benchmarks/scale_purge.py --kill-after 60   # kill after 60 s instead (a slow purge)
    .venv/bin/python benchmarks/scale_purge.py --packages 10000
    .venv/bin/python benchmarks/scale_purge.py --kill-after 60 --no-resume   # a purge too slow to finish

Prepares the backlog of a purge that did not run for weeks: closed export jobs finished more
than 31 days ago get back a stored package (a small file each, under MEDIA_ROOT), so that
--packages are due (counting any left due by an earlier run). Then, each as its own process
(`manage.py exports_purge --older-than 30d --apply`: a retention longer than the data's 7 days
of stored packages, so that none comes of age during the run):

1. idle: the same command with nothing due (`--older-than 3650d`): the baseline RSS;
2. run 1: SIGKILLed once 30 % of the packages are purged (or after --kill-after seconds);
3. run 2: to the end.

Checks afterwards: no package of the backlog is left on disk or named by its job; every job
of the backlog was marked expired exactly once (run 1's marks keep run 1's time; run 2
reports exactly the rest); no other stored package was touched. Then VACUUM ANALYZE of the
table, as autovacuum would do after such a purge. Peak RSS is each process's
own (VmHWM, sampled every 0.1 s), in MiB; the target: run 1 and run 2 each ≤ idle + 64 MiB.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, child_env, existing_django, private_redis  # noqa: E402
from scale_data import DATABASE, MEDIA_ROOT  # noqa: E402

MiB = 1024 * 1024
# Longer than the 7 days of stored packages the data has, so none comes of age during a run.
RETENTION = "30d"
BACKLOG_SQL = """
    UPDATE exports_exportjob j SET package = t.slug || '/' || j.id || '.zip', package_expired_at = NULL
    FROM tenants_tenant t
    WHERE t.id = j.tenant_id AND j.id IN (
        SELECT id FROM exports_exportjob
        WHERE status = 'closed' AND package = '' AND finished_at < now() - interval '31 days'
        ORDER BY finished_at DESC LIMIT %s)
    RETURNING j.id, j.package
"""


def prepare_backlog(count: int) -> list[tuple[str, str]]:
    """(job id, package name) of `count` old jobs given a stored package again, files written."""
    from django.db import connection, transaction

    from exports.models import package_storage

    if count <= 0:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(BACKLOG_SQL, [count])
        rows = [(str(job_id), name) for job_id, name in cursor.fetchall()]
    storage = package_storage()
    for _, name in rows:
        path = Path(storage.path(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PK\x05\x06" + bytes(18) + name.encode())
    return rows


def due_names() -> list[tuple[str, str]]:
    """(job id, package name) of the export jobs whose package is due (past RETENTION)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id::text, package FROM exports_exportjob WHERE package <> '' "
                       "AND finished_at < now() - interval '30 days' AND status NOT IN ('created', 'in_progress')")
        return cursor.fetchall()


def due_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM exports_exportjob WHERE package <> '' "
                       "AND finished_at < now() - interval '30 days' AND status NOT IN ('created', 'in_progress')")
        return cursor.fetchone()[0]


def peak_rss_mib(pid: int, previous: float) -> float:
    """The process's own high-water RSS (VmHWM: unlike wait4's ru_maxrss, it does not include
    the RSS of the parent that forked it), or `previous` once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return max(previous, int(line.split()[1]) * 1024 / MiB)
    except OSError:
        pass
    return previous


def purge(older_than: str, *, kill_when=None) -> tuple[float, float, str, bool]:
    """Run the command in its own process: (wall s, peak RSS MiB, stdout, killed)."""
    command = [sys.executable, "manage.py", "exports_purge", "--older-than", older_than, "--apply"]
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    killed, peak = False, 0.0
    while process.poll() is None:
        peak = peak_rss_mib(process.pid, peak)
        if kill_when is not None and kill_when(time.perf_counter() - began):
            process.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.1)
    out = process.stdout.read().decode()
    process.wait()
    return time.perf_counter() - began, peak, out.strip(), killed


def check(backlog, before_other: int, run1_end: float, run2_report: str) -> list[str]:
    """What must hold after the two runs, as lines (a line starting "FAILED" if it does not)."""
    from django.db import connection

    from exports.models import package_storage

    ids = [job_id for job_id, _ in backlog]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FILTER (WHERE package <> ''), count(*) FILTER (WHERE package_expired_at IS NOT NULL), "
                       "count(*) FILTER (WHERE package_expired_at < to_timestamp(%s)) FROM exports_exportjob "
                       "WHERE id = ANY(%s::uuid[])", [run1_end, ids])
        still_named, expired, by_run1 = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM exports_exportjob WHERE package <> ''")
        other = cursor.fetchone()[0]
    on_disk = sum(Path(package_storage().path(name)).exists() for _, name in backlog)
    reported = int(run2_report.split("Deleted ", 1)[1].split(" ", 1)[0]) if "Deleted " in run2_report else -1
    lines = [
        (still_named == 0 and on_disk == 0, f"backlog left: {still_named} named by their job, {on_disk} files on disk"),
        (expired == len(backlog), f"{expired:,} of {len(backlog):,} marked expired"),
        (by_run1 + reported == len(backlog), f"run 1 marked {by_run1:,}, run 2 reported {reported:,}: "
                                             f"{by_run1 + reported:,} (each once)"),
        (other == before_other, f"other stored packages: {other:,} (before: {before_other:,})"),
    ]
    return [("ok      " if ok else "FAILED  ") + text for ok, text in lines]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=100_000)
    parser.add_argument("--kill-at", type=float, default=0.3, help="kill run 1 once this share is purged")
    parser.add_argument("--kill-after", type=float, help="kill run 1 after this many seconds instead")
    parser.add_argument("--no-resume", action="store_true",
                        help="stop after run 1 and leave the rest due (for a purge too slow to finish)")
    args = parser.parse_args()
    with private_redis() as redis_url:
        existing_django(DATABASE, MEDIA_ROOT, REDIS_URL=redis_url)
        already = due_count()  # left by a run with --no-resume, or come of age since the data was made
        began = time.perf_counter()
        prepare_backlog(args.packages - already)
        backlog = due_names()
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM exports_exportjob WHERE package <> ''")
            other_before = cursor.fetchone()[0] - len(backlog)
        print(f"backlog: {len(backlog):,} packages due, prepared in {time.perf_counter() - began:.0f} s; "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        idle = purge("3650d")
        target = len(backlog)

        def kill_when(elapsed):
            if args.kill_after is not None:
                return elapsed >= args.kill_after
            return due_count() <= target * (1 - args.kill_at)

        run1 = purge(RETENTION, kill_when=kill_when)
        run1_end = time.time()
        left = due_count()
        print(f"run 1 killed after {run1[0]:.1f} s with {target - left:,} purged ({(target - left) / run1[0]:,.0f} a "
              f"second), {left:,} left; peak RSS {run1[1]:.1f} MiB, idle {idle[1]:.1f} MiB", flush=True)
        if args.no_resume:
            return 0
        run2 = purge(RETENTION)
        print(f"\n{'run':<34}{'wall s':>8}{'peak RSS MiB':>14}{'over idle':>11}  output")
        for name, (wall, rss, out, killed) in (("idle (nothing due)", idle), ("run 1 (SIGKILLed)", run1), ("run 2 (resumed)", run2)):
            print(f"{name:<34}{wall:>8.1f}{rss:>14.1f}{rss - idle[1]:>+11.1f}  {out[:90] if not killed else '(killed)'}")
        print(f"load average {os.getloadavg()[0]:.2f}\n")
        lines = check(backlog, other_before, run1_end, run2[2])
        print("\n".join(lines))
        with connection.cursor() as cursor:  # as autovacuum would after such a purge
            cursor.execute("VACUUM ANALYZE exports_exportjob")
        bounded = max(run1[1], run2[1]) - idle[1] <= 64
        print(f"\nmemory: {'met' if bounded else 'MISSED'} (≤ idle + 64 MiB); resumable: "
              f"{'met' if all(line.startswith('ok') for line in lines) else 'MISSED'}")
        return 0 if bounded and all(line.startswith("ok") for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
