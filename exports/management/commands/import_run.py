from django.core.files import File
from django.core.management.base import CommandError

from exports.jobs import run_import_job
from exports.models import JobStatus, ServicesExisting, UpdateVersionType
from exports.imports.services import import_job_create
from exports.selectors import import_job_get
from sparkexport.progress import JobProgressBar
from tenants.callers import Caller
from tenants.management.base import ServiceCommand


def mapping(value: str) -> dict:
    """SRC[=DST] as a services_modify item."""
    source, _, destination = value.partition("=")
    return {"service_uri_source": source.strip(), "service_uri_destination": destination.strip() or None}


class Command(ServiceCommand):
    help = (
        "Import a package exported with file_filter 'migrate' into a tenant, through the same "
        "checks and all-or-nothing import as the API. --dry-run prints the plan and writes nothing."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("tenant")
        parser.add_argument("file", help="The package ZIP.")
        parser.add_argument(
            "--destination", "-d", action="append", type=mapping, required=True,
            help="SRC[=DST]: import package service SRC (folder/service) as DST (default: the same). Repeatable.",
        )
        parser.add_argument("--if-present", choices=ServicesExisting.values, default=ServicesExisting.ABORT,
                            help="What to do with a destination service that exists (default abort).")
        parser.add_argument("--update-version-type", choices=UpdateVersionType.values, default=UpdateVersionType.MINOR,
                            help="How add_version numbers new versions (default minor).")
        parser.add_argument("--skip-unchanged", action="store_true",
                            help="Leave out package versions whose files equal a version of the destination service.")
        parser.add_argument("--allow-missing-dependencies", action="store_true",
                            help="Import even if an XCALL of an imported version reaches no service (a warning each).")
        parser.add_argument("--dry-run", action="store_true", help="Print the plan; write nothing.")

    def handle(self, *args, **options):
        caller = Caller(tenant=self.tenant(options["tenant"]), label="import_run", is_supervisor=True)
        services_modify = [{**item, "update_version_type": options["update_version_type"]} for item in options["destination"]]
        try:
            handle = open(options["file"], "rb")
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from None
        with handle:
            job = import_job_create(
                caller=caller,
                upload=File(handle, name=options["file"]),
                services_modify=services_modify,
                services_existing=options["if_present"],
                skip_unchanged=options["skip_unchanged"],
                allow_missing_dependencies=options["allow_missing_dependencies"],
                source_system="import_run",
                dry_run=options["dry_run"],
                enqueue=False,
            )
        if not job.dry_run:
            with JobProgressBar(self.stderr, "imported") as progress:
                run_import_job(str(job.pk), on_progress=progress)
        job = import_job_get(caller, job.pk)
        if job.status != JobStatus.CLOSED:
            raise CommandError(f"Import {job.pk} ended '{job.status}': {job.errors[0]['message']}")
        rows = job.outputs["service_versions"]
        verb = "would be" if job.dry_run else "were"
        lines = [f"{row['service_uri_source']} -> {row['service_uri_destination']} ({row['status']}, version_id {row['version_id_destination']})" for row in rows]
        lines += [f"warning: {w['message']}" for w in job.warnings]
        lines.append(f"{len(rows)} version(s) {verb} imported or skipped" + (" (dry run: nothing written)." if job.dry_run else "."))
        self.emit(options, {"id": str(job.pk), "dry_run": job.dry_run, **job.outputs, "warnings": job.warnings}, lines)
