#!/usr/bin/env python3
"""Benchmark 1, packaging throughput: a real export job against `zip -r` and the I/O floor.

    .venv/bin/python benchmarks/packaging.py                 # 100 versions (~210 MB), 3 rounds
    .venv/bin/python benchmarks/packaging.py --versions 25 --rounds 5

It creates a scratch PostgreSQL database (sparkexport_bench_pack, dropped at the end) and a
scratch MEDIA_ROOT under the temp dir, migrates, and stores the corpus through the models'
FileFields, as the catalog does: one tenant, one folder, `--versions` compiled versions, each
with a 1.5 MiB workbook of random bytes (`.xlsx`, does not compress) and a ~0.5 MB Neuron
package (`neuron.zip`, a real ZIP holding a 1.5 MiB module that deflates ~3x inside it).

Then, interleaved round-robin for `--rounds` rounds (medians reported):

  job      export_job_create(supervisor Caller, the folder, enqueue=False) + run_export_job in
           this process: selection, worker code, reading storage, writing and hashing the
           package, publishing it to storage, database updates (the job ends `closed`);
           the job row and package are deleted after each round so no round reuses another's
  zip -r   `zip -r -q` (default settings, level 6 everywhere) of MEDIA_ROOT/catalog, which
           holds exactly the job's source files
  floor    what any packager must do with these bytes, in this process: read every source file
           once in 1 MiB chunks, CRC-32 it (the ZIP headers need it), SHA-256 it (the package's
           file_hash) and write it to one output file (target: the job <= 1.3x this)

Loopback only; no timed assertion.
"""
import hashlib
import subprocess
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import MiB, corpus_arguments, create_corpus, machine, median, scratch_django  # noqa: E402

DB_NAME = "sparkexport_bench_pack"


def main() -> int:
    args = corpus_arguments(__doc__.split("\n\n")[0])
    info = machine()
    print(f"machine: {info['nproc']} CPU, {info['cpu']}, Python {info['python']}, zlib {info['zlib']}")
    with scratch_django(DB_NAME) as tmp:
        started = time.monotonic()
        corpus = create_corpus("bench", args.versions)
        print(f"corpus: {args.versions} versions, {len(corpus.source_files)} files, "
              f"{corpus.source_bytes / 1e6:.1f} MB ({corpus.source_bytes / MiB:.1f} MiB); module deflate ratio "
              f"{corpus.wasm_ratio:.2f}x; generated in {time.monotonic() - started:.1f} s")
        methods = {"job": job_runner(corpus), "zip -r": zip_runner(corpus, tmp), "floor": floor_runner(corpus, tmp)}
        times = {name: [] for name in methods}
        sizes = {}
        for round_no in range(args.rounds):
            for name, run in methods.items():
                t0 = time.perf_counter()
                size = run()
                times[name].append(time.perf_counter() - t0)
                sizes[name] = size
            print(f"round {round_no + 1}: " + ", ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items()))
        report(corpus, times, sizes)
    return 0


def job_runner(corpus):
    from exports.jobs import run_export_job
    from exports.models import ExportJob, JobStatus, package_storage
    from exports.services import export_job_create
    from tenants.callers import Caller
    from tenants.models import Tenant

    caller = Caller(tenant=Tenant.objects.get(slug=corpus.tenant_slug), label="benchmark", is_supervisor=True)

    def run():
        job = export_job_create(caller=caller, folders=[corpus.folder], services=[], version_ids=[],
                                source_system="benchmark", enqueue=False)
        run_export_job(str(job.pk))
        job.refresh_from_db()
        assert job.status == JobStatus.CLOSED, (job.status, job.errors)
        size = job.file_size
        # No later round may reuse this package (repeat exports are content-addressed).
        package_storage().delete(job.package.name)
        ExportJob.objects.filter(pk=job.pk).delete()
        return size

    return run


def zip_runner(corpus, tmp):
    out = tmp / "zip-r.zip"

    def run():
        out.unlink(missing_ok=True)
        subprocess.run(["zip", "-r", "-q", str(out), corpus.catalog_dir.name], cwd=corpus.catalog_dir.parent, check=True)
        return out.stat().st_size

    return run


def floor_runner(corpus, tmp):
    out_path = tmp / "floor.bin"

    def run():
        digest = hashlib.sha256()
        with open(out_path, "wb") as out:
            for path in corpus.source_files:
                crc = 0
                with open(path, "rb") as f:
                    while chunk := f.read(MiB):
                        crc = zlib.crc32(chunk, crc)
                        digest.update(chunk)
                        out.write(chunk)
        out_path.unlink()
        return None

    return run


def report(corpus, times, sizes):
    mb = corpus.source_bytes / 1e6
    med = {name: median(t) for name, t in times.items()}
    print()
    print("| Method | median s | MB/s | runs | output MB |")
    print("|---|---:|---:|---|---:|")
    for name, t in times.items():
        size = f"{sizes[name] / 1e6:.1f}" if sizes.get(name) else "–"
        print(f"| {name} | {med[name]:.2f} | {mb / med[name]:.0f} | {' / '.join(f'{x:.2f}' for x in t)} | {size} |")
    print()
    print(f"job vs zip -r: {med['zip -r'] / med['job']:.2f}x faster (target >= 3.5x); "
          f"job / floor: {med['job'] / med['floor']:.2f}x the floor (target <= 1.3x)")
    print(f"package {sizes['job'] / 1e6:.2f} MB vs zip -r {sizes['zip -r'] / 1e6:.2f} MB "
          f"({'same or smaller' if sizes['job'] <= sizes['zip -r'] else 'LARGER'})")


if __name__ == "__main__":
    sys.exit(main())
