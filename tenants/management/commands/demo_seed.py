from tenants.demo import demo_catalog_seed
from tenants.management.base import ServiceCommand
from tenants.models import Tenant


class Command(ServiceCommand):
    help = (
        "Seed a tenant (created if missing) with demo folders, services and versions: real "
        "openpyxl workbooks and valid WebAssembly Neuron packages. Safe to run again."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("tenant")
        parser.add_argument("--folders", type=int, default=2)
        parser.add_argument("--services", type=int, default=2, help="Services per folder.")
        parser.add_argument("--versions", type=int, default=3, help="Versions per service.")

    def handle(self, *args, **options):
        tenant, created = Tenant.objects.get_or_create(slug=options["tenant"])
        result = demo_catalog_seed(
            tenant=tenant,
            folders=options["folders"],
            services=options["services"],
            versions=options["versions"],
        )
        data = {"tenant": tenant.slug, "tenant_created": created, **result}
        self.emit(options, data, [
            f"Tenant '{tenant.slug}'{' created' if created else ''}: added {result['versions_added']} "
            f"of {result['versions_total']} demo versions (the rest existed)."
        ])
