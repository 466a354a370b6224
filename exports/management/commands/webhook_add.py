from exports.webhooks.models import WEBHOOK_EVENTS
from exports.webhooks.services import webhook_endpoint_create
from tenants.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Add a webhook endpoint to a tenant: a signed POST to URL when a job ends (docs/webhooks.md). "
        "The signing secret is printed once and never shown again."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("tenant")
        parser.add_argument("url", help="https://... (http and private addresses only with WEBHOOK_ALLOW_PRIVATE_NETWORKS=1).")
        parser.add_argument("--event", action="append", metavar="EVENT",
                            help=f"Repeatable; default: all of {', '.join(WEBHOOK_EVENTS)}.")

    def handle(self, *args, **options):
        tenant = self.tenant(options["tenant"])
        endpoint, secret = webhook_endpoint_create(tenant=tenant, url=options["url"], events=options["event"],
                                                   created_by="manage.py webhook_add")
        data = {"id": str(endpoint.pk), "tenant": tenant.slug, "url": endpoint.url, "events": endpoint.events,
                "active": endpoint.active, "secret": secret}
        self.emit(options, data, [
            f"Webhook endpoint {endpoint.pk} for tenant '{tenant.slug}': {endpoint.url}",
            f"  events: {', '.join(endpoint.events)}",
            f"  signing secret: {secret}",
            "Store the secret now: it is not shown again. Verify each delivery with it (docs/webhooks.md).",
        ])
