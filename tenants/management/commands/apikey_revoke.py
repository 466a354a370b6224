from tenants.management.base import ServiceCommand
from tenants.services import apikey_revoke_matching


class Command(ServiceCommand):
    help = (
        "Revoke a tenant's API keys: every live key of a name, or the key with a prefix (the part "
        "before the dot). Refused by every server process within 5 seconds, whatever happens to Redis."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("tenant")
        parser.add_argument("--name", help="Revoke every live key of this name.")
        parser.add_argument("--prefix", help="Revoke the key whose secret starts with this prefix.")

    def handle(self, *args, **options):
        tenant = self.tenant(options["tenant"])
        keys = apikey_revoke_matching(tenant=tenant, name=options["name"], prefix=options["prefix"])
        data = {"tenant": tenant.slug, "revoked": [{"name": key.name, "prefix": key.prefix} for key in keys]}
        self.emit(options, data, [
            f"Revoked {len(keys)} API key(s) of tenant '{tenant.slug}': "
            + ", ".join(f"{key.name} ({key.prefix})" for key in keys),
        ])
