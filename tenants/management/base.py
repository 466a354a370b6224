"""Shared shape of our management commands: service errors become clean command errors,
and `--json` prints exactly one JSON object on stdout for scripts."""
import json

from django.core.management.base import BaseCommand, CommandError

from sparkexport.errors import ApplicationError
from tenants.services import tenant_get_or_error


class ServiceCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object on stdout.")

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None

    def tenant(self, slug: str):
        return tenant_get_or_error(slug)

    def emit(self, options, data: dict, lines: list[str]) -> None:
        if options["json"]:
            self.stdout.write(json.dumps(data, sort_keys=True))
        else:
            for line in lines:
                self.stdout.write(line)
