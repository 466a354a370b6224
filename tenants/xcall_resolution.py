"""Which version an Xcall reaches: its reference resolved against a tenant's catalog.

A reference is read as an export request's `services` entry (tenants/references.py) and
resolves to one version, as Spark's Xcall does at calculation time: `folder/service` and a
service id to the service's latest version, `folder/service[1.2]` to the highest version that
starts with 1.2 (component-wise), `version/{id}` to that version. A reference that does not
parse, or names nothing in the catalog, resolves to None.

`CatalogIndex` holds just the versions the references can reach, read in a fixed number of
queries however many there are; an import adds the versions it will create and drops the ones
it will replace, to resolve against the catalog as it will be afterwards.
"""
from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sparkexport.errors import InvalidServiceUri
from tenants.catalog_lookup import in_conditions, pair_conditions, rows_where_any
from tenants.models import ServiceVersion, Tenant
from tenants.references import NamedRef, ServiceIdRef, VersionIdRef, parse_service_reference


@dataclass(frozen=True)
class CatalogVersion:
    """One version as a reference sees it."""

    folder: str
    service: str
    service_id: uuid.UUID
    version: str
    version_id: uuid.UUID
    semver: tuple[int, int, int]

    @property
    def uri(self) -> str:
        return f"{self.folder}/{self.service}[{self.version}]"

    @classmethod
    def of(cls, version: ServiceVersion) -> "CatalogVersion":
        service = version.service
        return cls(service.folder.name, service.name, service.service_id, version.version, version.version_id, version.semver)


def parse_reference(reference: str):
    try:
        return parse_service_reference(reference)
    except InvalidServiceUri:
        return None


class CatalogIndex:
    """The versions references can reach, by service name, service id and version id."""

    def __init__(self, versions: Iterable[CatalogVersion]):
        self.by_name: dict[tuple[str, str], list[CatalogVersion]] = defaultdict(list)
        self.by_service_id: dict[uuid.UUID, list[CatalogVersion]] = defaultdict(list)
        self.by_version_id: dict[uuid.UUID, CatalogVersion] = {}
        for version in versions:
            self._add(version)
        for versions_of in (*self.by_name.values(), *self.by_service_id.values()):
            versions_of.sort(key=lambda v: v.semver)

    def _add(self, version: CatalogVersion) -> None:
        self.by_name[(version.folder, version.service)].append(version)
        self.by_service_id[version.service_id].append(version)
        self.by_version_id[version.version_id] = version

    @classmethod
    def of_tenant(cls, tenant: Tenant, references: Iterable[str]) -> "CatalogIndex":
        """The tenant's versions that `references` can reach (one query)."""
        names, service_ids, version_ids = set(), set(), set()
        for ref in filter(None, map(parse_reference, references)):
            if isinstance(ref, NamedRef):
                names.add((ref.folder, ref.service))
            elif isinstance(ref, ServiceIdRef):
                service_ids.add(ref.service_id)
            else:
                version_ids.add(ref.version_id)
        conditions = [
            *pair_conditions(names, folder="service__folder__name", name="service__name"),
            *in_conditions("service__service_id", service_ids),
            *in_conditions("version_id", version_ids),
        ]
        versions = rows_where_any(
            ServiceVersion.objects.filter(service__folder__tenant=tenant).select_related("service__folder"), conditions
        )
        return cls(
            CatalogVersion.of(v) for v in versions
            if (v.service.folder.name, v.service.name) in names
            or v.service.service_id in service_ids or v.version_id in version_ids
        )

    def changed(self, *, added: Iterable[CatalogVersion] = (), removed_services: Iterable[tuple[str, str]] = ()) -> "CatalogIndex":
        """The catalog after an import: `removed_services` lose their versions (a replace), then
        `added` versions join."""
        removed = set(removed_services)
        kept = [v for v in self.by_version_id.values() if (v.folder, v.service) not in removed]
        return CatalogIndex([*kept, *added])

    def resolve(self, reference: str) -> CatalogVersion | None:
        """The version the reference reaches, or None."""
        ref = parse_reference(reference)
        if isinstance(ref, VersionIdRef):
            return self.by_version_id.get(ref.version_id)
        if isinstance(ref, ServiceIdRef):
            versions = self.by_service_id.get(ref.service_id, [])
        elif isinstance(ref, NamedRef):
            versions = self.by_name.get((ref.folder, ref.service), [])
            if ref.version is not None:
                versions = [v for v in versions if v.semver[: len(ref.version)] == ref.version]
        else:
            return None
        return versions[-1] if versions else None
