from django.core.management.base import CommandError

from exports.maintenance import export_package_verify, stored_packages
from sparkexport.progress import ProgressBar
from tenants.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Re-hash every stored export package and report those whose bytes no longer match "
        "their file_hash. Read-only; exits non-zero when any package is damaged."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--tenant", help="Only this tenant's packages.")

    def handle(self, *args, **options):
        jobs = stored_packages()
        if options["tenant"]:
            jobs = jobs.filter(tenant__slug=options["tenant"])
        jobs = list(jobs)
        damaged = []
        with ProgressBar(self.stderr, len(jobs), "packages verified") as progress:
            for job in jobs:
                outcome = export_package_verify(job)
                if not outcome.ok:
                    damaged.append(outcome)
                progress.advance()
        lines = [f"{o.job.pk} ({o.job.tenant}): {o.problem} (recorded {o.job.file_hash}, now {o.actual_sha256})" for o in damaged]
        lines.append(f"{len(jobs)} package(s) verified, {len(damaged)} damaged.")
        data = {
            "verified": len(jobs),
            "damaged": [{"id": str(o.job.pk), "tenant": o.job.tenant.slug, "problem": o.problem, "actual_sha256": o.actual_sha256} for o in damaged],
        }
        self.emit(options, data, lines)
        if damaged:
            raise CommandError(f"{len(damaged)} stored package(s) do not match their file_hash.")
