from tenants.management.base import ServiceCommand
from tenants.services import service_version_add


class Command(ServiceCommand):
    help = (
        "Add a service version from a workbook (.xlsx/.xlsm) and, if compiled, its Neuron package "
        "(a ZIP with a WebAssembly module). Creates the folder and service when missing."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("tenant")
        parser.add_argument("folder")
        parser.add_argument("service")
        parser.add_argument("version", help="MAJOR.MINOR.PATCH")
        parser.add_argument("--workbook", required=True, help="Path of the Excel workbook.")
        parser.add_argument("--neuron", help="Path of the compiled Neuron package; omit for 'not compiled'.")
        parser.add_argument("--release-note", default="", help="Text shown as the version's release note.")

    def handle(self, *args, **options):
        version = service_version_add(
            tenant=self.tenant(options["tenant"]),
            folder=options["folder"],
            service=options["service"],
            version=options["version"],
            workbook_path=options["workbook"],
            neuron_path=options["neuron"],
            release_note=options["release_note"],
        )
        data = {
            "service_uri": str(version),
            "service_id": str(version.service.service_id),
            "version_id": str(version.version_id),
            "compiled": version.is_compiled,
            "workbook_sha256": version.workbook_sha256,
            "neuron_sha256": version.neuron_sha256 or None,
        }
        state = "compiled" if version.is_compiled else "not compiled"
        self.emit(options, data, [f"Added {version} ({state}), version_id {version.version_id}."])
