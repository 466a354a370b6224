from tenants.management.base import ServiceCommand
from tenants.services import member_add


class Command(ServiceCommand):
    help = "Add a user (created if needed) to a tenant, as a user:pf member or a supervisor:pf."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("tenant")
        parser.add_argument("username")
        parser.add_argument("--supervisor", action="store_true", help="supervisor:pf: sees every job; admin access.")
        parser.add_argument("--password", help="Set the user's password (for the admin).")

    def handle(self, *args, **options):
        membership = member_add(
            tenant=self.tenant(options["tenant"]),
            username=options["username"],
            supervisor=options["supervisor"],
            password=options["password"],
        )
        data = {"tenant": options["tenant"], "username": options["username"], "group": membership.group}
        self.emit(options, data, [f"{options['username']} is a member of {options['tenant']} ({membership.group})."])
