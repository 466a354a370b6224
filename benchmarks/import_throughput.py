#!/usr/bin/env python3
"""Import throughput: importing a package against exporting the same package, and its memory.

    .venv/bin/python benchmarks/import_throughput.py                 # 100 versions (~210 MB), 3 rounds
    .venv/bin/python benchmarks/import_throughput.py --versions 25 --rounds 5

A scratch PostgreSQL database (sparkexport_bench_import, dropped at the end) and MEDIA_ROOT;
the corpus of benchmarks/packaging.py in tenant `bench` (10 services x 10 versions; each
workbook a real one carrying its 1.5 MiB of random bytes, since an import reads it), exported
once to get the package, and tenant `dest` with the empty folder `bench`. Then, interleaved for
`--rounds` rounds (medians reported):

  export   export_job_create + run_export_job of the folder, as benchmarks/packaging.py's job
           (the package is deleted after each round, so none is reused)
  import   what POST import and the worker do with the package, from its last byte received:
           import_job_create (size limit, reading and checking the ZIP, the plan, the Xcalls
           of every workbook, storing the upload) then run_import_job (the plan checked again,
           then every member written to storage, all in one transaction); the imported
           services, their files and the job are deleted after each round (not timed)

The upload is handed over as Django hands a request's: written to a temporary file and hashed
by sparkexport/uploads.py as it was received. Receiving is not timed, for a network sets its
pace, but its figure is printed beside the others (the SHA-256 of the file is done there).

Target: import <= 2x export. Memory: a fresh process runs one import of the package (`import`)
and reports its peak RSS above its idle RSS (VmHWM from /proc/self/status), next to the same
for one export (`export`): bounded, as for export, whatever the package's size.
Loopback only; no timed assertion.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    child_env, corpus_arguments, create_corpus, machine, median, scratch_django, status_kib,
)  # noqa: E402

DB_NAME = "sparkexport_bench_import"


def export_once(corpus):
    from exports.jobs import run_export_job
    from exports.models import ExportJob, JobStatus, package_storage
    from exports.services import export_job_create
    from tenants.callers import Caller
    from tenants.models import Tenant

    caller = Caller(tenant=Tenant.objects.get(slug=corpus.tenant_slug), label="benchmark", is_supervisor=True)
    job = export_job_create(caller=caller, folders=[corpus.folder], services=[], version_ids=[],
                            source_system="benchmark", enqueue=False)
    run_export_job(str(job.pk))
    job = ExportJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.CLOSED, (job.status, job.errors)
    return job, package_storage()


def export_runner(corpus):
    def run():
        job, storage = export_once(corpus)
        storage.delete(job.package.name)
        job.delete()

    return run


def services_of(corpus) -> list[dict]:
    return [{"service_uri_source": f"{corpus.folder}/service-{n:03d}", "service_uri_destination": None}
            for n in range(-(-corpus.versions // 10))]


def import_once(package: Path, services_modify: list[dict]) -> dict:
    """One whole import into tenant `dest`; answers its phases' seconds."""
    from exports.jobs import run_import_job
    from exports.imports.services import import_job_create
    from exports.models import ImportJob, JobStatus
    from tenants.callers import Caller
    from tenants.models import Tenant

    caller = Caller(tenant=Tenant.objects.get(slug="dest"), label="benchmark", is_supervisor=True)
    received = time.perf_counter()
    upload = receive(package)
    started = time.perf_counter()
    with upload:
        job = import_job_create(caller=caller, upload=upload, services_modify=services_modify,
                                services_existing="abort", source_system="benchmark", enqueue=False)
    created = time.perf_counter()
    run_import_job(str(job.pk))
    finished = time.perf_counter()
    job = ImportJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.CLOSED, (job.status, job.errors)
    return {"job": str(job.pk), "receipt": started - received, "post": created - started, "worker": finished - created}


def receive(package: Path):
    """The upload as Django hands it to POST import: its request's upload handler wrote it to a
    temporary file and hashed it as the bytes arrived (sparkexport/uploads.py), in Django's
    chunks of 64 KiB."""
    from sparkexport.uploads import HashingTemporaryFileUploadHandler

    handler = HashingTemporaryFileUploadHandler()
    size = package.stat().st_size
    handler.new_file("file", "package.zip", "application/zip", size)
    with open(package, "rb") as source:
        position = 0
        while chunk := source.read(handler.chunk_size):
            handler.receive_data_chunk(chunk, position)
            position += len(chunk)
    return handler.file_complete(size)


def import_cleanup(job_id: str) -> None:
    from exports.models import ImportJob
    from tenants.models import Service

    for service in Service.objects.filter(folder__tenant__slug="dest"):
        for version in service.versions.all():
            version.workbook.delete(save=False)
            version.neuron.delete(save=False)
        service.delete()
    job = ImportJob.objects.get(pk=job_id)
    if job.upload:
        job.upload.delete(save=False)
    job.delete()


def child(kind: str, package: str, corpus_json: str) -> None:
    import django

    django.setup()
    from tenants.models import Tenant

    corpus = json.loads(corpus_json)
    assert Tenant.objects.filter(slug="dest").exists()  # the database connection is open
    idle = status_kib("VmHWM")
    started = time.monotonic()
    if kind == "import":
        outcome = import_once(Path(package), corpus["services_modify"])
        import_cleanup(outcome["job"])
    else:
        from types import SimpleNamespace

        job, storage = export_once(SimpleNamespace(**corpus))
        storage.delete(job.package.name)
        job.delete()
    print(json.dumps({"idle_kib": idle, "peak_kib": status_kib("VmHWM"), "seconds": time.monotonic() - started}))


def main() -> int:
    args = corpus_arguments(__doc__.split("\n\n")[0])
    info = machine()
    print(f"machine: {info['nproc']} CPU, {info['cpu']}, Python {info['python']}; load average {os.getloadavg()[0]:.2f}")
    with scratch_django(DB_NAME) as tmp:
        from tenants.models import Folder, Tenant

        corpus = create_corpus("bench", args.versions, real_workbooks=True)  # an import reads them
        dest = Tenant.objects.create(slug="dest", max_package_bytes=2 * 1024 ** 3, import_api_job_limit=100,
                                     job_timeout_seconds=3600)
        Folder.objects.create(tenant=dest, name=corpus.folder)
        job, storage = export_once(corpus)
        package = tmp / "package.zip"
        with storage.open(job.package.name) as src, open(package, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        storage.delete(job.package.name)  # so that no round reuses it
        job.delete()
        print(f"package: {package.stat().st_size / 1e6:.1f} MB, {args.versions} versions")
        services_modify = services_of(corpus)

        def run_import():
            outcome = import_once(package, services_modify)
            outcome["seconds"] = outcome["post"] + outcome["worker"]  # the upload's receipt is not timed
            import_cleanup(outcome["job"])  # not timed
            return outcome

        runners = {"export": export_runner(corpus)}
        times = {"export": [], "import": [], "import: POST": [], "import: worker": [],
                 "(not in the ratio) upload received and hashed": []}
        for round_no in range(args.rounds):
            started = time.perf_counter()
            runners["export"]()
            times["export"].append(time.perf_counter() - started)
            outcome = run_import()
            times["import"].append(outcome["seconds"])
            times["import: POST"].append(outcome["post"])
            times["import: worker"].append(outcome["worker"])
            times["(not in the ratio) upload received and hashed"].append(outcome["receipt"])
            print(f"round {round_no + 1}: export {times['export'][-1]:.2f} s, import {times['import'][-1]:.2f} s "
                  f"(POST {outcome['post']:.2f} s, worker {outcome['worker']:.2f} s); "
                  f"load average {os.getloadavg()[0]:.2f}")

        memory = {}
        corpus_json = json.dumps({"tenant_slug": corpus.tenant_slug, "folder": corpus.folder,
                                  "versions": corpus.versions, "services_modify": services_modify})
        for kind in ("export", "import"):
            out = subprocess.run([sys.executable, __file__, "--child", kind, str(package), corpus_json],
                                 env=child_env(), capture_output=True, text=True, check=True)
            memory[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        report(times, memory)
    return 0


def report(times, memory) -> None:
    print()
    print("| what | median s | runs (s) |")
    print("|---|---:|---|")
    for name, values in times.items():
        print(f"| {name} | {median(values):.2f} | {' / '.join(f'{v:.2f}' for v in values)} |")
    ratio = median(times["import"]) / median(times["export"])
    print(f"\nimport / export: {ratio:.2f}x (target <= 2x)")
    for kind, figures in memory.items():
        print(f"{kind}: peak {figures['peak_kib'] / 1024:.1f} MiB, idle {figures['idle_kib'] / 1024:.1f} MiB, "
              f"above idle {(figures['peak_kib'] - figures['idle_kib']) / 1024:.1f} MiB ({figures['seconds']:.2f} s)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
    else:
        sys.exit(main())
