#!/usr/bin/env python3
"""Benchmark 2, memory: peak RSS of a worker process packaging the corpus and a 4x larger one.

    .venv/bin/python benchmarks/memory.py                   # 100 and 400 versions, 3 rounds
    .venv/bin/python benchmarks/memory.py --versions 25 --rounds 1

Scratch PostgreSQL database sparkexport_bench_mem and a MEDIA_ROOT under the temp dir (both
removed at the end). Two tenants hold the corpus of benchmarks/packaging.py: `bench` with
`--versions` versions (~210 MB) and `bench4x` with 4x as many (~840 MB; its size limit raised
to 2 GiB). For each round and size, the parent creates the export job (export_job_create,
supervisor Caller, enqueue=False) and a fresh worker process (a subprocess of this script)
sets Django up, imports the worker's modules (exports.jobs and what it imports), opens its
database connection, reads its idle RSS (VmHWM from /proc/self/status), runs
exports.jobs.run_export_job(job_id) and reads VmHWM again. Reported: peak minus idle per
size (target: at most 32 MiB, and the same for both sizes).
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import child_env, create_corpus, machine, median, scratch_django, status_kib  # noqa: E402

DB_NAME = "sparkexport_bench_mem"


def child(job_id: str) -> None:
    import django

    django.setup()
    from exports.jobs import run_export_job
    from exports.models import ExportJob

    assert ExportJob.objects.filter(pk=job_id).exists()  # the worker's database connection is open
    idle = status_kib("VmHWM")
    started = time.monotonic()
    run_export_job(job_id)
    seconds = time.monotonic() - started
    job = ExportJob.objects.get(pk=job_id)
    print(json.dumps({"idle_kib": idle, "peak_kib": status_kib("VmHWM"), "status": job.status,
                      "size": job.file_size, "seconds": seconds}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    info = machine()
    print(f"machine: {info['nproc']} CPU, {info['cpu']}, Python {info['python']}")
    with scratch_django(DB_NAME):
        from exports.models import ExportJob, package_storage
        from exports.services import export_job_create
        from tenants.callers import Caller
        from tenants.models import Tenant

        sizes = {"1x": ("bench", args.versions), "4x": ("bench4x", 4 * args.versions)}
        corpora = {}
        for label, (slug, versions) in sizes.items():
            corpora[label] = create_corpus(slug, versions, distinct_neurons=args.versions, seed=len(label) + versions)
            print(f"corpus {label}: tenant {slug}, {versions} versions, {corpora[label].source_bytes / 1e6:.1f} MB")
        results = {label: [] for label in sizes}
        for round_no in range(args.rounds):
            for label, (slug, _) in sizes.items():
                caller = Caller(tenant=Tenant.objects.get(slug=slug), label="benchmark", is_supervisor=True)
                job = export_job_create(caller=caller, folders=["bench"], services=[], version_ids=[],
                                        source_system="benchmark", enqueue=False)
                proc = subprocess.run([sys.executable, __file__, "--child", str(job.pk)], env=child_env(),
                                      capture_output=True, text=True, timeout=900)
                if proc.returncode != 0:
                    print(proc.stdout, proc.stderr)
                    return 1
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                assert row["status"] == "closed", row
                results[label].append(row)
                job.refresh_from_db()
                package_storage().delete(job.package.name)  # no reuse by the next round
                ExportJob.objects.filter(pk=job.pk).delete()
                print(f"round {round_no + 1} {label}: idle {row['idle_kib'] / 1024:.1f} MiB, peak {row['peak_kib'] / 1024:.1f} MiB, "
                      f"above idle {(row['peak_kib'] - row['idle_kib']) / 1024:.1f} MiB, package {row['size'] / 1e6:.1f} MB "
                      f"in {row['seconds']:.2f} s")
        print()
        print("| Corpus | source MB | package MB | idle RSS MiB | peak RSS MiB | peak - idle MiB (median / max) |")
        print("|---|---:|---:|---:|---:|---:|")
        above = {}
        for label, rows in results.items():
            deltas = [(r["peak_kib"] - r["idle_kib"]) / 1024 for r in rows]
            above[label] = max(deltas)
            print(f"| {label} ({sizes[label][1]} versions) | {corpora[label].source_bytes / 1e6:.1f} | {rows[-1]['size'] / 1e6:.1f} "
                  f"| {median([r['idle_kib'] for r in rows]) / 1024:.1f} | {median([r['peak_kib'] for r in rows]) / 1024:.1f} "
                  f"| {median(deltas):.1f} / {max(deltas):.1f} |")
        print()
        ok = all(v <= 32 for v in above.values())
        print(f"peak above idle: 1x {above['1x']:.1f} MiB, 4x {above['4x']:.1f} MiB "
              f"(target <= 32 MiB for both: {'met' if ok else 'NOT met'}; 4x - 1x = {above['4x'] - above['1x']:+.1f} MiB)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        sys.exit(main())
