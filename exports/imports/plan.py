"""The plan of an import: where each package service goes and what happens to it.

The same plan is computed at upload (to refuse an import that cannot succeed, and to answer
a dry run) and again by the worker inside its transaction, against the catalog as it is then.
"""
import uuid
from dataclasses import dataclass, field

from django.db import models
from django.db.models.functions import Lower

from exports.models import ServicesExisting, UpdateVersionType
from exports.packages.reader import Package, PackageVersion
from tenants.references import NamedRef, parse_service_reference
from sparkexport.errors import Conflict, InvalidRequest, InvalidServiceUri, NotFound
from tenants.catalog_lookup import pair_conditions, rows_where_any
from tenants.models import Folder, Service, ServiceVersion, Tenant
from tenants.naming import parse_semver


class ItemStatus(models.TextChoices):
    """What an import does with a service or version (the status rows' `status`)."""

    ADDED = "added"
    REPLACED = "replaced"
    SKIPPED = "skipped"
    UNCHANGED = "unchanged"  # skip_unchanged: its files equal an existing version, named instead


WRITTEN = (ItemStatus.ADDED, ItemStatus.REPLACED)


@dataclass
class PlannedVersion:
    source: PackageVersion
    version: str
    version_id: uuid.UUID
    status: str

    @property
    def written(self) -> bool:
        """Whether the import writes this version (else it is skipped, or an existing one stands for it)."""
        return self.status in WRITTEN


@dataclass
class PlannedService:
    source_folder: str
    source_service: str
    source_service_id: str
    folder: Folder
    name: str
    service_id: uuid.UUID
    existing: Service | None
    status: str
    versions: list[PlannedVersion] = field(default_factory=list)


def _semver_key(version: str) -> tuple[int, int, int]:
    return parse_semver(version) or (0, 0, 0)


def _bump(version: tuple[int, int, int], kind: str) -> tuple[int, int, int]:
    major, minor, patch = version
    if kind == UpdateVersionType.MAJOR:
        return (major + 1, 0, 0)
    if kind == UpdateVersionType.PATCH:
        return (major, minor, patch + 1)
    return (major, minor + 1, 0)


def _named(raw: str, what: str, allow_version: bool) -> NamedRef:
    ref = parse_service_reference(raw)
    if not isinstance(ref, NamedRef) or (ref.version is not None and not allow_version):
        raise InvalidServiceUri(
            f"{what} {raw!r} must name a service as 'folder/service'"
            + (" (optionally with [version])." if allow_version else "."),
            details={"reference": raw},
        )
    return ref


@dataclass(frozen=True)
class Mapping:
    source: NamedRef
    destination: NamedRef
    update_version_type: str

    @property
    def destination_key(self) -> tuple[str, str]:
        return (self.destination.folder, self.destination.service)


def parse_mappings(services_modify: list[dict]) -> list[Mapping]:
    """services_modify items as (source, destination, bump), destinations distinct."""
    mappings = []
    for item in services_modify:
        source = _named(item["service_uri_source"], "service_uri_source", allow_version=True)
        destination_raw = item.get("service_uri_destination") or source.uri
        destination = _named(destination_raw, "service_uri_destination", allow_version=False)
        mappings.append(
            Mapping(source, destination, item.get("update_version_type") or UpdateVersionType.MINOR)
        )
    by_case = {}
    for m in mappings:
        by_case.setdefault(m.destination.uri.lower(), []).append(m.destination.uri)
    repeated = sorted(uris for uris in by_case.values() if len(uris) > 1)
    if repeated:
        raise InvalidRequest(
            f"Two services_modify items import into {' and '.join(sorted(set(repeated[0])))}; give each a "
            "distinct service_uri_destination (names that differ only in case are not distinct).",
            details={"destinations": sorted({uri for uris in repeated for uri in uris})},
        )
    return mappings


def _package_versions(package: Package, source: NamedRef) -> list[PackageVersion]:
    versions = [
        v
        for v in package.versions
        if (v.folder, v.service) == (source.folder, source.service)
        and (source.version is None or _semver_key(v.version)[: len(source.version)] == source.version)
    ]
    if not versions:
        held = sorted({f"{v.folder}/{v.service}" for v in package.versions})
        raise NotFound(
            f"The package holds no {source.raw}; it holds {', '.join(held[:10]) or 'no services'}.",
            code="SERVICE_NOT_FOUND",
            details={"service_uri_source": source.raw},
        )
    return versions


def _destination_folders(tenant: Tenant, mappings: list[Mapping]) -> dict[str, Folder]:
    names = {m.destination.folder for m in mappings}
    folders = {f.name: f for f in Folder.objects.filter(tenant=tenant, name__in=names)}
    missing = sorted(names - folders.keys())
    if missing:
        raise NotFound(
            f"Destination folder '{missing[0]}' does not exist in tenant '{tenant.slug}'. "
            "Create it first, or import into an existing folder.",
            code="FOLDER_NOT_FOUND",
            details={"folders": missing},
        )
    return folders


def _existing_services(tenant: Tenant, mappings: list[Mapping]) -> dict[tuple[str, str], Service]:
    """The destination services that exist; SERVICE_NAME_CONFLICT for one whose name differs only
    in case from a service of its folder (a case-insensitive file system would make them one)."""
    wanted = {(m.destination.folder, m.destination.service.lower()) for m in mappings}
    services = rows_where_any(
        Service.objects.filter(folder__tenant=tenant).annotate(lower_name=Lower("name"))
        .select_related("folder").prefetch_related("versions"),
        pair_conditions(wanted, folder="folder__name", name="lower_name"),
    )
    exact = {(s.folder.name, s.name): s for s in services}
    by_lower = {(s.folder.name, s.name.lower()): s for s in services}
    clashes = sorted(
        (m.destination.uri, f"{found.folder.name}/{found.name}") for m in mappings
        if m.destination_key not in exact
        and (found := by_lower.get((m.destination.folder, m.destination.service.lower()))) is not None
    )
    if clashes:
        raise Conflict(
            f"Service {clashes[0][0]} would differ only in case from service {clashes[0][1]} of the same "
            "folder, which a case-insensitive file system cannot tell apart. Import into "
            f"{clashes[0][1]} itself, or choose another service_uri_destination.",
            code="SERVICE_NAME_CONFLICT",
            details={"services": [new for new, _ in clashes], "existing": [old for _, old in clashes]},
        )
    return exact


def import_plan_build(
    *,
    tenant: Tenant,
    package: Package,
    services_modify: list[dict],
    services_existing: str,
    skip_unchanged: bool = False,
    id_seed: uuid.UUID,
) -> list[PlannedService]:
    """Where every selected package service goes; refuses what cannot be imported.

    `id_seed` (the job's id) derives the ids given where the source's are taken, so that the
    plan made at upload and the worker's promise and create the same ids."""
    mappings = parse_mappings(services_modify)
    sources = {id(m): _package_versions(package, m.source) for m in mappings}
    folders = _destination_folders(tenant, mappings)
    existing = _existing_services(tenant, mappings)
    unchanged = {
        id(m): _unchanged(sources[id(m)], existing.get(m.destination_key), services_existing) if skip_unchanged else {}
        for m in mappings
    }
    if services_existing == ServicesExisting.ABORT:
        _refuse_existing(tenant, mappings, existing, sources, unchanged)
    freed = _freed_by_replace(mappings, existing, unchanged) if services_existing == ServicesExisting.REPLACE else set()
    ids = _FreeIds.of(sources.values(), freed, id_seed)
    return [
        _planned_service(m, sources[id(m)], existing.get(m.destination_key), folders, ids, services_existing, unchanged[id(m)])
        for m in mappings
    ]


def _unchanged(versions: list[PackageVersion], service: Service | None, services_existing: str) -> dict[str, ServiceVersion]:
    """skip_unchanged: the existing version each package version (by workbook path) equals in
    files (workbook and Neuron SHA-256), the highest if several do. A replace also wants the same
    version number, since the service then holds the package's versions as numbered there."""
    if service is None or services_existing == ServicesExisting.SKIP:
        return {}
    by_number = services_existing == ServicesExisting.REPLACE
    existing = {}
    for version in sorted(service.versions.all(), key=lambda v: v.semver):
        existing[(version.workbook_sha256, version.neuron_sha256, version.version if by_number else None)] = version
    matches = {}
    for v in versions:
        match = existing.get((v.workbook.sha256, v.neuron.sha256, v.version if by_number else None))
        if match is not None:
            matches[v.workbook.path] = match
    return matches


def _freed_by_replace(mappings: list[Mapping], existing: dict, unchanged: dict) -> set[uuid.UUID]:
    """The ids of the versions a replace deletes: all of the replaced services' but those kept as unchanged."""
    kept = {match.version_id for matches in unchanged.values() for match in matches.values()}
    replaced = [existing[m.destination_key] for m in mappings if m.destination_key in existing]
    return {v.version_id for service in replaced for v in service.versions.all()} - kept


def _refuse_existing(tenant: Tenant, mappings: list[Mapping], existing: dict, sources: dict, unchanged: dict) -> None:
    # A service whose package versions are all unchanged (skip_unchanged) is left as it is.
    clashes = sorted(
        m.destination.uri
        for m in mappings
        if m.destination_key in existing and len(unchanged[id(m)]) < len(sources[id(m)])
    )
    if clashes:
        raise Conflict(
            f"Service {clashes[0]} already exists in tenant '{tenant.slug}', and "
            "services_existing is 'abort'. Choose 'replace', 'add_version' or 'skip', or "
            "import into another service_uri_destination."
            + (" With skip_unchanged, an existing service is left as it is only when every package "
               "version of it equals one of its versions." if any(unchanged.values()) else ""),
            code="SERVICE_EXISTS",
            details={"services": clashes},
        )


@dataclass
class _FreeIds:
    """Source ids are kept wherever they are free in the destination installation."""

    taken_version_ids: set
    taken_service_ids: set
    seed: uuid.UUID

    @classmethod
    def of(cls, sources, freed_version_ids: set, seed: uuid.UUID) -> "_FreeIds":
        """`freed_version_ids`: of the versions a replace deletes, free for the package's versions."""
        wanted = {uuid.UUID(v.version_id) for versions in sources for v in versions}
        wanted_services = {uuid.UUID(versions[0].service_id) for versions in sources}
        return cls(
            set(ServiceVersion.objects.filter(version_id__in=wanted).values_list("version_id", flat=True)) - freed_version_ids,
            set(Service.objects.filter(service_id__in=wanted_services).values_list("service_id", flat=True)),
            seed,
        )

    def _keep(self, value: str, taken: set, destination: str) -> uuid.UUID:
        """The source id if free, else one derived from the seed, the destination and the source id:
        as unique as a random one, and the same each time this job's plan is made."""
        candidate = uuid.UUID(value)
        while candidate in taken:
            candidate = uuid.uuid5(self.seed, f"{destination}:{candidate}")
        taken.add(candidate)
        return candidate

    def version_id(self, value: str, destination: str) -> uuid.UUID:
        return self._keep(value, self.taken_version_ids, destination)

    def service_id(self, value: str, destination: str) -> uuid.UUID:
        return self._keep(value, self.taken_service_ids, destination)


def _planned_service(m: Mapping, versions, service, folders, ids: _FreeIds, services_existing: str, unchanged: dict) -> PlannedService:
    item = PlannedService(
        source_folder=m.source.folder,
        source_service=m.source.service,
        source_service_id=versions[0].service_id,
        folder=folders[m.destination.folder],
        name=m.destination.service,
        service_id=service.service_id if service else ids.service_id(versions[0].service_id, m.destination.uri),
        existing=service,
        status=ItemStatus.ADDED,
    )
    if service is not None and services_existing == ServicesExisting.SKIP:
        item.status = ItemStatus.SKIPPED
        item.versions = [PlannedVersion(v, v.version, uuid.UUID(v.version_id), ItemStatus.SKIPPED) for v in versions]
        return item
    appends = service is not None and services_existing == ServicesExisting.ADD_VERSION
    if service is not None and services_existing == ServicesExisting.REPLACE:
        item.status = ItemStatus.REPLACED
    highest = max((existing_v.semver for existing_v in service.versions.all()), default=(0, 0, 0)) if appends else None
    for v in versions:
        if (match := unchanged.get(v.workbook.path)) is not None:
            item.versions.append(PlannedVersion(v, match.version, match.version_id, ItemStatus.UNCHANGED))
            continue
        number = v.version
        if appends:
            highest = _bump(highest, m.update_version_type)
            number = ".".join(str(part) for part in highest)
        item.versions.append(PlannedVersion(v, number, ids.version_id(v.version_id, m.destination.uri), item.status))
    if service is not None and _leaves_unchanged(item, service):
        item.status = ItemStatus.UNCHANGED
    return item


def _leaves_unchanged(item: PlannedService, service: Service) -> bool:
    """Every package version equals an existing one, and (a replace) no other version goes."""
    if any(planned.status != ItemStatus.UNCHANGED for planned in item.versions):
        return False
    kept = {planned.version_id for planned in item.versions}
    return item.status != ItemStatus.REPLACED or kept == {v.version_id for v in service.versions.all()}


def plan_outputs(plan: list[PlannedService]) -> dict:
    """outputs.services[] and outputs.service_versions[] of the import status document."""
    services, versions = [], []
    for item in plan:
        destination = {
            "service_uri_destination": f"{item.folder.name}/{item.name}",
            "folder_destination": item.folder.name,
            "service_destination": item.name,
            "service_id_destination": str(item.service_id),
        }
        source = {
            "service_uri_source": f"{item.source_folder}/{item.source_service}",
            "folder_source": item.source_folder,
            "service_source": item.source_service,
            "service_id_source": item.source_service_id,
        }
        services.append({**source, **destination, "status": item.status})
        for planned in item.versions:
            v = planned.source
            versions.append(
                {
                    **source,
                    "service_uri_source": f"{v.folder}/{v.service}[{v.version}]",
                    "version_source": v.version,
                    "version_id_source": v.version_id,
                    **destination,
                    "service_uri_destination": f"{item.folder.name}/{item.name}[{planned.version}]",
                    "version_destination": planned.version,
                    "version_id_destination": str(planned.version_id),
                    "status": planned.status,
                }
            )
    return {"services": services, "service_versions": versions}
