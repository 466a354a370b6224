from exports.maintenance import exports_reap
from tenants.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "End export and import jobs that no worker will finish: past their timeout (closed_by_timeout) or "
        "whose worker died or whose queue entry is gone (failed), removing partial files. "
        "Dry run unless --apply."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--apply", action="store_true", help="End the jobs (default: only report).")

    def handle(self, *args, **options):
        outcomes = exports_reap(apply=options["apply"])
        verb = "ended" if options["apply"] else "would end"
        lines = [f"{o.job.pk} ({o.job.tenant}): {verb} as {o.status}: {o.reason}" for o in outcomes]
        lines.append(f"{len(outcomes)} stale job(s) {verb}." + ("" if options["apply"] else " Dry run: pass --apply to act."))
        data = {
            "applied": options["apply"],
            "jobs": [{"id": str(o.job.pk), "tenant": o.job.tenant.slug, "status": o.status, "reason": o.reason} for o in outcomes],
        }
        self.emit(options, data, lines)
