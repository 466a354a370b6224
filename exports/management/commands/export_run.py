import hashlib

from django.core.management.base import CommandError

from exports.jobs import run_export_job
from exports.models import FileFilter, JobStatus, VersionFilter, package_storage
from exports.selectors import export_job_get
from exports.services import export_job_create
from tenants.callers import Caller
from sparkexport.progress import JobProgressBar
from sparkexport.storage import iter_stored_file
from tenants.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Run an export from the command line, through the same checks and packaging as the "
        "API (the tenant's job limit included), and write the ZIP to a file."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("tenant")
        parser.add_argument("--folder", action="append", default=[], help="A folder to export (repeatable).")
        parser.add_argument("--service", action="append", default=[], help="A service reference, e.g. f/s or f/s[1.2] (repeatable).")
        parser.add_argument("--version-id", action="append", default=[], help="A version_id (repeatable).")
        parser.add_argument("--file-filter", choices=FileFilter.values, default=FileFilter.MIGRATE)
        parser.add_argument("--version-filter", choices=VersionFilter.values, default=VersionFilter.ALL)
        parser.add_argument("--include-dependencies", action="store_true",
                            help="Also export every version the selected ones call through Xcalls.")
        parser.add_argument("-o", "--output", required=True, help="Where to write the ZIP.")

    def handle(self, *args, **options):
        if not (options["folder"] or options["service"] or options["version_id"]):
            raise CommandError("Select something to export: --folder, --service or --version-id.")
        caller = Caller(tenant=self.tenant(options["tenant"]), label="export_run", is_supervisor=True)
        job = export_job_create(
            caller=caller,
            folders=options["folder"],
            services=options["service"],
            version_ids=options["version_id"],
            file_filter=options["file_filter"],
            version_filter=options["version_filter"],
            include_dependencies=options["include_dependencies"],
            source_system="export_run",
            enqueue=False,
        )
        reused = job.status == JobStatus.CLOSED  # an identical package was still stored
        if not reused:
            with JobProgressBar(self.stderr, "packaged") as progress:
                run_export_job(str(job.pk), on_progress=progress)
        job = export_job_get(caller, job.pk)
        if job.status != JobStatus.CLOSED:
            problem = (job.errors or [{"message": job.status}])[0]["message"]
            raise CommandError(f"Export {job.pk} ended '{job.status}': {problem}")
        digest = hashlib.sha256()
        with open(options["output"], "wb") as out:
            for chunk in iter_stored_file(package_storage(), job.package.name):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != job.file_hash:
            raise CommandError(f"The stored package of {job.pk} does not match its file_hash.")
        data = {
            "id": str(job.pk),
            "file": options["output"],
            "file_hash": job.file_hash,
            "size": job.file_size,
            "versions": job.versions.count(),
            "zip_process_time": job.zip_process_time_ms,
            "reused": reused,
        }
        how = "reused the identical stored package" if reused else f"packaged in {job.zip_process_time_ms} ms"
        self.emit(options, data, [
            f"Export {job.pk}: {job.versions.count()} version(s), {job.file_size} bytes, {how}, "
            f"written to {options['output']}.",
            f"SHA-256 {job.file_hash}",
        ])
