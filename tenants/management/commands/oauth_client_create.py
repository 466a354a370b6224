from tenants.management.base import ServiceCommand
from tenants.services import oauth_client_create


class Command(ServiceCommand):
    help = "Create an OAuth2 client-credentials client acting as a tenant member. The secret is printed once."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("tenant")
        parser.add_argument("--name", required=True, help="The client's name, unique per tenant with --rotate.")
        parser.add_argument("--user", required=True, help="A member of the tenant; jobs show as created by it.")
        parser.add_argument("--rotate", action="store_true", help="Delete the tenant's clients of this name first.")

    def handle(self, *args, **options):
        tenant = self.tenant(options["tenant"])
        _, client_id, client_secret = oauth_client_create(
            tenant=tenant, name=options["name"], username=options["user"], rotate=options["rotate"]
        )
        data = {"tenant": tenant.slug, "client_id": client_id, "client_secret": client_secret}
        self.emit(options, data, [
            f"OAuth client '{options['name']}' for tenant '{tenant.slug}' (acts as {options['user']}):",
            f"  client_id:     {client_id}",
            f"  client_secret: {client_secret}",
            f"Token URL: /auth/realms/{tenant.slug}/protocol/openid-connect/token. "
            "Store the secret now: it is not shown again.",
        ])
