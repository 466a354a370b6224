"""Demo data: realistic folders, services and versions made with real libraries."""
import tempfile
from pathlib import Path

from sparkexport.errors import InvalidRequest
from tenants import artifacts
from tenants.models import ServiceVersion, Tenant
from tenants.services import service_version_add

FOLDER_NAMES = ["insurance", "pricing", "claims", "underwriting", "retirement", "lending"]
SERVICE_NAMES = ["term-life", "motor-quote", "home-cover", "risk-score", "annuity", "loan-offer"]
DRAFT = ("drafts", "draft-calculator", "0.1.0")  # a version that is never compiled


def _name(names: list[str], index: int) -> str:
    base = names[index % len(names)]
    return base if index < len(names) else f"{base}-{index // len(names) + 1}"


def demo_catalog_seed(*, tenant: Tenant, folders: int = 2, services: int = 2, versions: int = 3) -> dict:
    """Create what is missing of the demo catalog; running it again adds nothing."""
    if min(folders, services, versions) < 0:
        raise InvalidRequest("The numbers of folders, services and versions may not be negative.")
    existing = set(
        ServiceVersion.objects.filter(service__folder__tenant=tenant).values_list(
            "service__folder__name", "service__name", "version"
        )
    )
    wanted = [
        (_name(FOLDER_NAMES, f), _name(SERVICE_NAMES, f * services + s), f"1.{v}.0", True)
        for f in range(folders)
        for s in range(services)
        for v in range(versions)
    ]
    wanted.append((*DRAFT, False))
    added = 0
    with tempfile.TemporaryDirectory() as scratch:
        for folder, service, version, compiled in wanted:
            if (folder, service, version) in existing:
                continue
            workbook = Path(scratch, f"{service}.xlsx")
            workbook.write_bytes(artifacts.make_demo_workbook(service, version))
            neuron = None
            if compiled:
                neuron = Path(scratch, "neuron.zip")
                neuron.write_bytes(artifacts.make_demo_neuron(service, version))
            service_version_add(
                tenant=tenant,
                folder=folder,
                service=service,
                version=version,
                workbook_path=workbook,
                neuron_path=neuron,
                release_note=f"Demo release {version} of {service}.",
                author="demo_seed",
            )
            added += 1
    return {"versions_added": added, "versions_total": len(wanted)}
