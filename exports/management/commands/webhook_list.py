from exports.webhooks.services import webhook_endpoints
from tenants.management.base import ServiceCommand


class Command(ServiceCommand):
    help = "List a tenant's webhook endpoints (their secrets are never shown; a prefix names each)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("tenant")

    def handle(self, *args, **options):
        tenant = self.tenant(options["tenant"])
        endpoints = [
            {"id": str(endpoint.pk), "url": endpoint.url, "events": endpoint.events, "active": endpoint.active,
             "secret_prefix": endpoint.secret_prefix, "created_at": endpoint.created_at.isoformat()}
            for endpoint in webhook_endpoints(tenant)
        ]
        lines = [f"{item['id']}  {'active' if item['active'] else 'inactive'}  {item['url']}  "
                 f"({', '.join(item['events'])}; secret {item['secret_prefix']}...)" for item in endpoints]
        lines.append(f"{len(endpoints)} webhook endpoint(s) for tenant '{tenant.slug}'.")
        self.emit(options, {"tenant": tenant.slug, "endpoints": endpoints}, lines)
