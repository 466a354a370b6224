#!/usr/bin/env python3
"""Benchmark 3, repeat exports: the first export of a selection against an unchanged repeat.

    .venv/bin/python benchmarks/repeat.py                  # 100 versions (~210 MB), 3 rounds

Packages are byte-identical for identical selections, so a repeat export whose selection and
source files have not changed reuses the stored package (content-addressed by every entry's
path, size and SHA-256). Each round deletes the stored packages, then times a first export
(the whole job: selection, packaging, hashing, storing, database updates) and a repeat export
of the same folder, and checks that both report the same file_hash. Scratch database
`sparkexport_bench_repeat` and a temporary MEDIA_ROOT, removed at the end. Target: the repeat
is at least 20x faster.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import create_corpus, machine, median, scratch_django  # noqa: E402

DB_NAME = "sparkexport_bench_repeat"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=100, help="versions in the corpus (default 100, ~210 MB)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported (default 3)")
    args = parser.parse_args()
    info = machine()
    print(f"machine: {info['nproc']} CPU, {info['cpu']}, Python {info['python']}")
    with scratch_django(DB_NAME):
        from exports.jobs import run_export_job
        from exports.purge import export_package_delete
        from exports.models import ExportJob, JobStatus
        from exports.services import export_job_create
        from tenants.callers import Caller
        from tenants.models import Tenant

        corpus = create_corpus("bench", args.versions)
        print(f"corpus: {args.versions} versions, {corpus.source_bytes / 1e6:.1f} MB")
        caller = Caller(tenant=Tenant.objects.get(slug=corpus.tenant_slug), label="benchmark", is_supervisor=True)

        def export() -> tuple[float, ExportJob]:
            started = time.perf_counter()
            job = export_job_create(caller=caller, folders=[corpus.folder], services=[], version_ids=[], enqueue=False)
            if job.status == JobStatus.CREATED:  # a reused package is closed already: no worker
                run_export_job(str(job.pk))
            elapsed = time.perf_counter() - started
            job.refresh_from_db()
            assert job.status == JobStatus.CLOSED, (job.status, job.errors)
            return elapsed, job

        first_times, repeat_times = [], []
        for round_no in range(args.rounds):
            for job in ExportJob.objects.exclude(package=""):
                export_package_delete(job)
            first_s, first = export()
            repeat_s, repeat = export()
            assert repeat.file_hash == first.file_hash and repeat.package.name == first.package.name
            first_times.append(first_s)
            repeat_times.append(repeat_s)
            print(f"round {round_no + 1}: first {first_s * 1000:.0f} ms, repeat {repeat_s * 1000:.1f} ms, "
                  f"file_hash {first.file_hash[:16]}… (same)")
        first_med, repeat_med = median(first_times), median(repeat_times)
        print()
        print(f"first export {first_med * 1000:.0f} ms, repeat export {repeat_med * 1000:.1f} ms: "
              f"{first_med / repeat_med:.0f}x faster (target >= 20x), same file_hash")
    return 0


if __name__ == "__main__":
    sys.exit(main())
