"""The services an import's versions call (Xcalls), checked against the destination tenant as
it will be after the import: a version is not deployed calling a service that is not there.

Each version the import writes has its workbook read from the package (tenants/xcalls.py,
streaming): in place when the package stores it uncompressed, as ours do, else through a
temporary copy (openpyxl needs a seekable file). Every literal reference
must resolve (tenants/xcall_resolution.py) in the destination's catalog with the versions this
import adds, without those a replace deletes; unresolved ones refuse the import with
MISSING_DEPENDENCY, or are warnings with `allow_missing_dependencies`. Dynamic references (a
first argument that is not a literal) cannot be resolved: always warnings, DYNAMIC_DEPENDENCY.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass

from exports.imports.plan import ItemStatus, PlannedService, PlannedVersion
from exports.packages.reader import InvalidPackage, PackageFile, open_member
from exports.packages.reader.window import open_stored_member
from sparkexport.errors import Unprocessable
from tenants.models import Tenant
from tenants.naming import parse_semver
from tenants.xcall_resolution import CatalogIndex, CatalogVersion
from tenants.xcalls import Xcall, workbook_xcalls

COPY_CHUNK = 1 << 20
FIX_MISSING = (
    "Import the services they call first, include them in the package (export with "
    '"include_dependencies": true), or send "allow_missing_dependencies": true to import anyway '
    "(each then a MISSING_DEPENDENCY warning)."
)


@dataclass(frozen=True)
class MissingDependency:
    """A literal Xcall of a version this import writes that reaches nothing after it."""

    caller: str  # folder/service[version] in the destination
    caller_source: str  # folder/service[version] in the package
    call: Xcall

    def detail(self) -> dict:
        return {
            "service_uri_destination": self.caller,
            "service_uri_source": self.caller_source,
            "xcall": self.call.reference,
            "cell": self.call.cell,
        }

    def words(self) -> str:
        return f"{self.caller} calls {self.call.reference!r} ({self.call.cell})"


def _written(plan: list[PlannedService]) -> list[tuple[PlannedService, PlannedVersion]]:
    return [(item, planned) for item in plan for planned in item.versions if planned.written]


def planned_xcalls(package_path: str, plan: list[PlannedService],
                   known: dict[str, list[Xcall]] | None = None) -> dict[str, list[Xcall]]:
    """The Xcalls of every version the plan writes, by its workbook's path in the package; a
    workbook in `known` (found at upload in the same package) is not read again."""
    known = known or {}
    calls: dict[str, list[Xcall]] = {}
    for _, planned in _written(plan):
        source = planned.source
        path = source.workbook.path
        if path not in calls:
            label = f"{source.folder}/{source.service}[{source.version}]"
            calls[path] = known[path] if path in known else _member_xcalls(package_path, source.workbook, label)
    return calls


def xcalls_to_json(calls: dict[str, list[Xcall]]) -> dict:
    """`planned_xcalls` as ImportJob.workbook_xcalls keeps it."""
    return {path: [asdict(call) for call in found] for path, found in calls.items()}


def xcalls_from_json(value: dict | None) -> dict[str, list[Xcall]]:
    return {path: [Xcall(**call) for call in found] for path, found in (value or {}).items()}


def _member_xcalls(package_path: str, member: PackageFile, label: str) -> list[Xcall]:
    with _seekable_member(package_path, member) as workbook:
        try:
            return workbook_xcalls(workbook)
        except Exception as exc:  # openpyxl's many errors for a file that is not a workbook
            raise Unprocessable(
                f"The workbook of {label} in the package could not be read as an Excel workbook "
                f"({type(exc).__name__}). Export the service again and upload the new package.zip.",
                code="INVALID_IMPORT_ZIP",
            ) from None


def _seekable_member(package_path: str, member: PackageFile):
    if (in_place := open_stored_member(package_path, member)) is not None:
        return in_place
    copy = tempfile.TemporaryFile()
    try:
        with open_member(package_path, member) as stream:
            shutil.copyfileobj(stream, copy, COPY_CHUNK)
    except InvalidPackage as exc:
        copy.close()
        raise Unprocessable(str(exc), code="INVALID_IMPORT_ZIP") from None
    copy.seek(0)
    return copy


def _catalog_after(tenant: Tenant, plan: list[PlannedService], references: set[str]) -> CatalogIndex:
    """The destination catalog as the import leaves it, as far as `references` can reach."""
    added, removed = [], []
    for item in plan:
        if item.status == ItemStatus.REPLACED:
            removed.append((item.folder.name, item.name))
        for planned in item.versions:
            # A replace removes the service's versions, then brings back those it keeps unchanged.
            if planned.written or item.status == ItemStatus.REPLACED:
                added.append(CatalogVersion(
                    item.folder.name, item.name, item.service_id, planned.version, planned.version_id,
                    parse_semver(planned.version),
                ))
    return CatalogIndex.of_tenant(tenant, references).changed(added=added, removed_services=removed)


def dependency_warnings(
    *, tenant: Tenant, plan: list[PlannedService], calls: dict[str, list[Xcall]], allow_missing: bool
) -> list[dict]:
    """Refuses the import if a literal Xcall of a version it writes reaches nothing afterwards
    (unless `allow_missing`); answers the warnings: those missing ones, then the dynamic ones."""
    references = {c.reference for found in calls.values() for c in found if not c.dynamic}
    after = _catalog_after(tenant, plan, references) if references else CatalogIndex([])
    missing, dynamic = [], []
    for item, planned in _written(plan):
        caller = f"{item.folder.name}/{item.name}[{planned.version}]"
        source = planned.source
        for call in calls[source.workbook.path]:
            if call.dynamic:
                dynamic.append(_dynamic_warning(caller, call, tenant))
            elif after.resolve(call.reference) is None:
                missing.append(MissingDependency(caller, f"{source.folder}/{source.service}[{source.version}]", call))
    if missing and not allow_missing:
        raise _missing_error(tenant, missing)
    return [*(_missing_warning(m, tenant) for m in missing), *dynamic]


def _missing_error(tenant: Tenant, missing: list[MissingDependency]) -> Unprocessable:
    shown = "; ".join(m.words() for m in missing[:5]) + ("; …" if len(missing) > 5 else "")
    return Unprocessable(
        f"{len(missing)} Xcall(s) of the versions this import would deploy reach no service in tenant "
        f"'{tenant.slug}', counting the versions the import adds: {shown}. {FIX_MISSING}",
        code="MISSING_DEPENDENCY",
        details={"missing_dependencies": [m.detail() for m in missing]},
    )


def _missing_warning(missing: MissingDependency, tenant: Tenant) -> dict:
    return {
        "code": "MISSING_DEPENDENCY",
        "message": f"{missing.words()}, which reaches no service in tenant '{tenant.slug}': imported "
        "anyway (allow_missing_dependencies); the call fails until that service is imported.",
    }


def _dynamic_warning(caller: str, call: Xcall, tenant: Tenant) -> dict:
    return {
        "code": "DYNAMIC_DEPENDENCY",
        "message": f"{caller} calls the service that {call.reference!r} ({call.cell}) names when the "
        f"workbook calculates, so it could not be checked: make sure it exists in tenant '{tenant.slug}'.",
    }
