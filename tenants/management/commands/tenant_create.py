from tenants.management.base import ServiceCommand
from tenants.services import tenant_create


class Command(ServiceCommand):
    help = "Create a tenant with its export job limit, package size limit and job timeout."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("slug", help="Lowercase letters, digits and '-'; the URL's first segment.")
        parser.add_argument("--export-job-limit", type=int, default=1, help="Concurrent export jobs (default 1).")
        parser.add_argument("--max-package-mb", type=int, default=200, help="Largest package in MB (default 200).")
        parser.add_argument("--job-timeout-minutes", type=int, default=15, help="Job timeout (default 15).")

    def handle(self, *args, **options):
        tenant = tenant_create(
            slug=options["slug"],
            export_job_limit=options["export_job_limit"],
            max_package_mb=options["max_package_mb"],
            job_timeout_minutes=options["job_timeout_minutes"],
        )
        data = {
            "tenant": tenant.slug,
            "export_api_job_limit": tenant.export_api_job_limit,
            "max_package_bytes": tenant.max_package_bytes,
            "job_timeout_seconds": tenant.job_timeout_seconds,
        }
        self.emit(options, data, [
            f"Created tenant '{tenant.slug}': {tenant.export_api_job_limit} export job(s) at a time, "
            f"packages up to {options['max_package_mb']} MB, jobs time out after "
            f"{options['job_timeout_minutes']} min."
        ])
