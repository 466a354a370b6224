from exports.webhooks.services import webhook_endpoint_remove
from tenants.management.base import ServiceCommand


class Command(ServiceCommand):
    help = "Remove a tenant's webhook endpoint, with its deliveries and their attempts."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("tenant")
        parser.add_argument("id", help="The endpoint's id (webhook_list shows it).")

    def handle(self, *args, **options):
        tenant = self.tenant(options["tenant"])
        endpoint = webhook_endpoint_remove(tenant=tenant, endpoint_id=options["id"])
        self.emit(options, {"tenant": tenant.slug, "id": options["id"], "removed": True},
                  [f"Removed webhook endpoint {options['id']} ({endpoint.url}) of tenant '{tenant.slug}'."])
