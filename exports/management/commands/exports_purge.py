import argparse
import re
from datetime import timedelta

from exports.purge import exports_purge
from sparkexport.progress import ProgressBar
from tenants.management.base import ServiceCommand
from tenants.models import MB

UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def duration(value: str) -> timedelta:
    """'7d', '12h', '30m' or '90s'."""
    match = re.fullmatch(r"([0-9]{1,6})([dhms])", value.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration; use e.g. 7d, 12h, 30m or 90s.")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(ServiceCommand):
    help = (
        "Delete stored export packages and import uploads older than the retention period "
        "(export jobs then report the package as expired, and downloads answer 410), in batches "
        "of 500 with bounded memory; a run that was stopped is finished by the next. Dry run "
        "unless --apply."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--older-than", type=duration, default=timedelta(days=7), help="Retention (default 7d).")
        parser.add_argument("--delete-rows", action="store_true", help="Also delete finished job rows that old.")
        parser.add_argument("--apply", action="store_true", help="Delete (default: only report).")

    def _files_due(self, options) -> int:
        if not options["apply"]:
            return 0
        report = exports_purge(older_than=options["older_than"], apply=False)
        return report["packages"] + report["uploads"]

    def handle(self, *args, **options):
        with ProgressBar(self.stderr, self._files_due(options), "files deleted") as progress:
            report = exports_purge(
                older_than=options["older_than"],
                apply=options["apply"],
                delete_rows=options["delete_rows"],
                progress=progress.advance,
            )
        verb = "deleted" if options["apply"] else "would delete"
        line = (
            f"{verb} {report['packages']} package(s) and {report['uploads']} import upload(s), "
            f"{report['bytes'] / MB:.1f} MB"
        )
        line += f", {report['webhook_deliveries']} webhook delivery(ies)"
        if options["delete_rows"]:
            line += f", and {report['rows']} job row(s)"
        line += f" older than {options['older_than']}."
        if not options["apply"]:
            line += " Dry run: pass --apply to act."
        self.emit(options, {"applied": options["apply"], **report}, [line[0].upper() + line[1:]])
