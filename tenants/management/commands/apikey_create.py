from tenants.management.base import ServiceCommand
from tenants.models import Permission
from tenants.services import DEFAULT_KEY_PERMISSIONS, apikey_create


class Command(ServiceCommand):
    help = "Create an API key for a tenant. The key is printed once and never stored."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("tenant")
        parser.add_argument("--name", required=True, help="Shown as created_by on the key's jobs.")
        parser.add_argument(
            "--permission",
            action="append",
            choices=Permission.values,
            help=f"Feature permission (repeatable; default: {', '.join(DEFAULT_KEY_PERMISSIONS)}).",
        )
        parser.add_argument("--supervisor", action="store_true", help="The key sees every job of its tenant.")
        parser.add_argument("--rotate", action="store_true", help="Revoke the tenant's live keys of this name first.")

    def handle(self, *args, **options):
        tenant = self.tenant(options["tenant"])
        api_key, secret = apikey_create(
            tenant=tenant,
            name=options["name"],
            permissions=options["permission"],
            supervisor=options["supervisor"],
            rotate=options["rotate"],
        )
        data = {"tenant": tenant.slug, "name": api_key.name, "api_key": secret, "permissions": api_key.permissions}
        self.emit(options, data, [
            f"API key '{api_key.name}' for tenant '{tenant.slug}' ({', '.join(api_key.permissions)}):",
            f"  {secret}",
            "Store it now: it is not shown again. Send it as x-synthetic-key with x-tenant-name.",
        ])
