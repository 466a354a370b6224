from sparkexport.progress import ProgressBar
from tenants.catalog_xcalls import versions_without_xcalls, versions_xcalls_scan
from tenants.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Read the Xcalls (the services a workbook calls) of versions added before they were "
        "recorded. A dry run unless given --apply: it reports what it would record."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--tenant", help="Only this tenant's versions.")
        parser.add_argument("--apply", action="store_true", help="Record what is read.")

    def handle(self, *args, **options):
        tenant = self.tenant(options["tenant"]) if options["tenant"] else None
        versions = versions_without_xcalls(tenant)
        with ProgressBar(self.stderr, versions.count(), "workbooks read") as progress:
            outcomes = versions_xcalls_scan(versions.iterator(), apply=options["apply"], on_version=lambda _: progress.advance())
        failed = [outcome for outcome in outcomes if outcome.problem]
        calls = sum(len(outcome.calls) for outcome in outcomes if not outcome.problem)
        dynamic = sum(call.dynamic for outcome in outcomes for call in outcome.calls)
        data = {
            "applied": options["apply"],
            "versions": len(outcomes),
            "xcalls": calls,
            "dynamic": dynamic,
            "unreadable": [{"version": str(o.version), "problem": o.problem} for o in failed],
        }
        verb = "Recorded" if options["apply"] else "Would record"
        self.emit(options, data, [
            f"{verb} {calls} Xcall(s) ({dynamic} dynamic) of {len(outcomes) - len(failed)} version(s).",
            *(f"  unreadable: {o.version}: {o.problem}" for o in failed),
            *([] if options["apply"] else ["Dry run: nothing was written. Run again with --apply."]),
        ])
