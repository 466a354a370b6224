"""Where an imported version came from: the package's source (tenant, installation), the
package's SHA-256 and the import job, recorded on each version an import writes and shown in
the import status document."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from exports.packages.reader import Package
from sparkexport.zip_paths import CONTROL_CHARACTERS
from tenants.models import ServiceVersion


def _manifest_text(value, field_name: str) -> str:
    """A manifest's free-text field as ServiceVersion `field_name` stores it: "" when absent or
    not text (unknown)."""
    if not isinstance(value, str):
        return ""
    return CONTROL_CHARACTERS.sub("", value).strip()[: ServiceVersion._meta.get_field(field_name).max_length]


@dataclass(frozen=True)
class PackageLineage:
    """What every version of one package shares about its origin."""

    source_tenant: str  # "" when the manifest does not say
    source_installation: str  # "" when the manifest does not say (packages of older exports)
    package_sha256: str

    @classmethod
    def of(cls, package: Package, package_sha256: str) -> PackageLineage:
        manifest = package.manifest
        return cls(
            source_tenant=_manifest_text(manifest.get("source_tenant"), "imported_from_tenant"),
            source_installation=_manifest_text(manifest.get("source_installation"), "imported_from_installation"),
            package_sha256=package_sha256,
        )

    def outputs(self) -> dict:
        """The import status document's `outputs` fields (null for what is unknown)."""
        return {
            "source_tenant": self.source_tenant or None,
            "source_installation": self.source_installation or None,
            "file_hash": self.package_sha256 or None,
        }

    def version_fields(self, *, job_id: uuid.UUID, source_version_id: str) -> dict:
        """The `imported_*` fields of a ServiceVersion this import writes."""
        return {
            "imported_by_job": job_id,
            "imported_from_tenant": self.source_tenant,
            "imported_from_installation": self.source_installation,
            "imported_from_version_id": uuid.UUID(source_version_id),
            "imported_package_sha256": self.package_sha256,
        }
