import argparse

from tenants.demo import demo_catalog_seed
from tenants.management.base import ServiceCommand
from tenants.selectors import tenant_get
from tenants.services import tenant_create


def count(value: str) -> int:
    """A number of demo items: checked by the parser, before the tenant is created."""
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; use 0 or more.")
    return number


class Command(ServiceCommand):
    help = (
        "Seed a tenant (created if missing) with demo folders, services and versions: real "
        "openpyxl workbooks and valid WebAssembly Neuron packages. Safe to run again."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("tenant")
        parser.add_argument("--folders", type=count, default=2, help="Demo folders (default 2).")
        parser.add_argument("--services", type=count, default=2, help="Services per folder (default 2).")
        parser.add_argument("--versions", type=count, default=3, help="Versions per service (default 3).")
        parser.add_argument(
            "--large-mb", type=count, default=0,
            help="Also fill folder 'large' with about this many MB of Neuron packages (exports slow "
            "enough to cancel by hand; default 0).",
        )

    def handle(self, *args, **options):
        tenant = tenant_get(options["tenant"])
        created = tenant is None
        if created:
            tenant = tenant_create(slug=options["tenant"])
        result = demo_catalog_seed(
            tenant=tenant,
            folders=options["folders"],
            services=options["services"],
            versions=options["versions"],
            large_mb=options["large_mb"],
        )
        data = {"tenant": tenant.slug, "tenant_created": created, **result}
        already = result["versions_total"] - result["versions_added"]
        self.emit(options, data, [
            f"Tenant '{tenant.slug}'{' created' if created else ''}: added {result['versions_added']} "
            f"demo version(s); {already} were there already."
        ])
