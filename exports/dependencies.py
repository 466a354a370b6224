"""What an export's versions call: the closure `include_dependencies` adds, and the rows of
`outputs.dependencies[]` (also in the package manifest).

Each literal Xcall is resolved against the tenant's catalog (tenants/xcall_resolution.py); a
dynamic one cannot be, and is reported as such. The closure grows a round per level of calls,
each round a fixed number of queries, and visits each version once, so cycles end.
"""
from dataclasses import dataclass

from sparkexport.errors import Unprocessable
from tenants.catalog_xcalls import versions_xcalls_ensure
from tenants.models import ServiceVersion, Tenant, VersionXcall
from tenants.xcall_resolution import CatalogIndex


@dataclass(frozen=True)
class Dependencies:
    """The versions to export (the selection, with its closure when asked) and the rows."""

    versions: list[ServiceVersion]
    rows: list[dict]


def _uri(version: ServiceVersion) -> str:
    return f"{version.service.folder.name}/{version.service.name}[{version.version}]"


def _calls_of(versions: list[ServiceVersion], *, complete: bool) -> dict[int, list[VersionXcall]]:
    """Each version's recorded Xcalls. With `complete`, versions added before Xcalls were
    recorded (until `catalog_dependencies --apply` runs) are read first: a closure must not miss
    a call; without it, the rows show what is recorded, and no request reads workbooks."""
    if complete and (unreadable := versions_xcalls_ensure(versions)):
        names = [_uri(version) for version in unreadable]
        raise Unprocessable(
            f"The workbook of {names[0]} could not be read, so the services it calls are unknown. "
            "An operator's `manage.py catalog_dependencies` lists the workbooks that cannot be read; "
            "upload a new version of it, or export without include_dependencies.",
            code="DEPENDENCIES_UNKNOWN",
            details={"service_versions": names},
        )
    calls = {version.pk: [] for version in versions}
    for call in VersionXcall.objects.filter(version__in=[version.pk for version in versions]).order_by("reference"):
        calls[call.version_id].append(call)
    return calls


def _missing(unresolved: list[tuple[ServiceVersion, str]]) -> Unprocessable:
    first_version, first_reference = unresolved[0]
    return Unprocessable(
        f"{_uri(first_version)} calls {first_reference!r}, which names no version in this tenant, "
        "so its dependencies cannot be included. Add the called service (or correct the Xcall), "
        "or export without include_dependencies.",
        code="DEPENDENCY_NOT_FOUND",
        details={
            "dependencies": [
                {"service_uri_source": _uri(version), "version_id_source": str(version.version_id), "xcall": reference}
                for version, reference in unresolved
            ]
        },
    )


def _closure_round(tenant: Tenant, frontier: list[ServiceVersion], calls: dict, selected: dict) -> list[ServiceVersion]:
    """The versions the frontier's literal calls reach that are not selected yet."""
    literal = [(version, call.reference) for version in frontier for call in calls[version.pk] if not call.dynamic]
    index = CatalogIndex.of_tenant(tenant, [reference for _, reference in literal])
    resolved = {(version.pk, reference): index.resolve(reference) for version, reference in literal}
    unresolved = [(version, reference) for version, reference in literal if resolved[(version.pk, reference)] is None]
    if unresolved:
        raise _missing(unresolved)
    reached = {target.version_id for target in resolved.values()} - {v.version_id for v in selected.values()}
    return list(
        ServiceVersion.objects.filter(service__folder__tenant=tenant, version_id__in=reached).select_related("service__folder")
    )


def export_dependencies(tenant: Tenant, versions: list[ServiceVersion], *, include: bool) -> Dependencies:
    """The versions to export and a row per Xcall of each; with `include`, every version reached
    through literal Xcalls joins them (DEPENDENCY_NOT_FOUND when a call reaches nothing)."""
    selected = {version.pk: version for version in versions}
    calls = _calls_of(versions, complete=include)
    frontier = versions
    while include and frontier:
        frontier = _closure_round(tenant, frontier, calls, selected)
        selected.update((version.pk, version) for version in frontier)
        calls.update(_calls_of(frontier, complete=True))
    ordered = sorted(selected.values(), key=lambda v: (v.service.folder.name, v.service.name, v.semver))
    return Dependencies(ordered, dependency_rows(tenant, ordered, calls))


def dependency_rows(tenant: Tenant, versions: list[ServiceVersion], calls: dict) -> list[dict]:
    """outputs.dependencies[]: one row per Xcall of each version, in the versions' order."""
    index = CatalogIndex.of_tenant(tenant, [c.reference for v in versions for c in calls[v.pk] if not c.dynamic])
    exported = {version.version_id for version in versions}
    rows = []
    for version in versions:
        for call in calls[version.pk]:
            target = None if call.dynamic else index.resolve(call.reference)
            rows.append(
                {
                    "service_uri_source": _uri(version),
                    "version_id_source": str(version.version_id),
                    "xcall": call.reference,
                    "dynamic": call.dynamic,
                    "resolved_service_uri": target.uri if target else None,
                    "resolved_version_id": str(target.version_id) if target else None,
                    "included": bool(target and target.version_id in exported),
                }
            )
    return rows
