"""Package versions: the manifest's "service_versions", each version's folder (version.json,
neuron.zip, one workbook) and its version.json, which must agree with the manifest."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass

from exports.packages.format import NEURON_ENTRY_NAME, VERSION_JSON_NAME
from exports.packages.reader.contents import read_json_member
from exports.packages.reader.metadata import version_details
from exports.packages.reader.model import (
    UNCHANGED,
    UPLOAD_PACKAGE,
    InvalidPackage,
    PackageFile,
    PackageVersion,
    show,
)
from tenants.naming import catalog_name_problem, parse_semver

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
MAX_WORKBOOK_NAME_CHARS = 100
MAX_VERSION_JSON_BYTES = 1 << 20

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _manifest_error(problem: str) -> InvalidPackage:
    return InvalidPackage(f"The package's manifest.json {problem}. {UNCHANGED}")


@dataclass(frozen=True)
class _Row:
    """One checked row of the manifest's "service_versions"."""

    folder: str
    service: str
    version: str
    service_id: str
    version_id: str

    @property
    def label(self) -> str:
        return f"{self.folder}/{self.service}[{self.version}]"

    @property
    def base(self) -> str:
        return f"{self.folder}/{self.service}/{self.version}"


def check_versions(
    zf: zipfile.ZipFile,
    manifest: dict,
    files: dict[str, PackageFile],
    by_name: dict[str, zipfile.ZipInfo],
) -> list[PackageVersion]:
    """Step 7: manifest "service_versions", the version folders and their version.json."""
    rows = _manifest_rows(manifest)
    by_folder: dict[str, list[str]] = {}  # every listed file sits directly in a version folder
    for path in files:
        folder, _, name = path.rpartition("/")
        by_folder.setdefault(folder, []).append(name)
    known = {row.base for row in rows}
    for folder_path, names in by_folder.items():
        if folder_path not in known:
            raise InvalidPackage(
                f"The package was modified: unexpected file {show(folder_path + '/' + names[0])} in the "
                f"manifest, outside every service version's folder. {UNCHANGED}"
            )
    versions = [_version(zf, row, by_folder.get(row.base, []), files, by_name) for row in rows]
    versions.sort(key=lambda v: (v.folder, v.service, v.semver))
    return versions


def _manifest_rows(manifest: dict) -> list[_Row]:
    raw_rows = manifest.get("service_versions")
    if not isinstance(raw_rows, list):
        raise _manifest_error('has no "service_versions" list')
    if not raw_rows:
        raise InvalidPackage(
            "The package holds no service versions: there is nothing to import. Export at least one service."
        )
    rows = [_row(index, raw) for index, raw in enumerate(raw_rows)]
    _check_unique(rows)
    return rows


def _row(index: int, raw: object) -> _Row:
    if not isinstance(raw, dict):
        raise _manifest_error(f"service_versions[{index}] is not an object")
    folder, service, version = raw.get("folder_source"), raw.get("service_source"), raw.get("version_source")
    for what, name in (("folder", folder), ("service", service)):
        if problem := catalog_name_problem(name):
            raise _manifest_error(f"has an invalid {what} name {show(name)}: {problem}")
    if parse_semver(version) is None:
        raise _manifest_error(
            f"has an invalid version {show(version)} for {folder}/{service}: expected MAJOR.MINOR.PATCH (e.g. 1.2.3)"
        )
    label = f"{folder}/{service}[{version}]"
    return _Row(
        folder, service, version,
        service_id=_uuid(raw.get("service_id_source"), f"service_id_source for {label}"),
        version_id=_uuid(raw.get("version_id_source"), f"version_id_source for {label}"),
    )


def _uuid(value: object, what: str) -> str:
    if not isinstance(value, str) or not _UUID_RE.fullmatch(value):
        raise _manifest_error(f"has an invalid {what} {show(value)}: expected a UUID")
    return value.lower()


def _check_unique(rows: list[_Row]) -> None:
    """Each version once, each version_id once, one service_id per service and the other way."""
    seen_versions, seen_version_ids = set(), set()
    service_ids: dict[tuple[str, str], str] = {}
    services_by_id: dict[str, tuple[str, str]] = {}
    for row in rows:
        service = (row.folder, row.service)
        if (*service, row.version) in seen_versions:
            raise _manifest_error(f"lists version {show(row.label)} twice")
        seen_versions.add((*service, row.version))
        if row.version_id in seen_version_ids:
            raise _manifest_error(f"gives two versions the version_id {row.version_id}")
        seen_version_ids.add(row.version_id)
        if service_ids.setdefault(service, row.service_id) != row.service_id:
            raise _manifest_error(f"gives service {row.folder}/{row.service} two different service ids")
        if services_by_id.setdefault(row.service_id, service) != service:
            raise _manifest_error(f"gives two services the service_id {row.service_id}")


def _version(zf, row: _Row, names: list[str], files: dict[str, PackageFile], by_name) -> PackageVersion:
    for required in (VERSION_JSON_NAME, NEURON_ENTRY_NAME):
        if required not in names:
            raise InvalidPackage(
                f"The package is incomplete: version {row.label} has no {required} (expected "
                f"{show(row.base + '/' + required)}). {UNCHANGED}"
            )
    workbook = files[f"{row.base}/{_workbook_name(row, names)}"]
    neuron = files[f"{row.base}/{NEURON_ENTRY_NAME}"]
    metadata = _read_version_json(zf, by_name[f"{row.base}/{VERSION_JSON_NAME}"])
    _check_version_metadata(metadata, row, workbook=workbook, neuron=neuron)
    return PackageVersion(
        folder=row.folder,
        service=row.service,
        service_id=row.service_id,
        version=row.version,
        version_id=row.version_id,
        metadata=metadata,
        workbook=workbook,
        neuron=neuron,
        details=version_details(metadata, row.label),
    )


def _workbook_name(row: _Row, names: list[str]) -> str:
    """The one workbook of a version's folder; anything else there is refused."""
    workbooks = []
    for name in names:
        if name in (VERSION_JSON_NAME, NEURON_ENTRY_NAME):
            continue
        if (
            not name.lower().endswith(WORKBOOK_SUFFIXES)
            or len(name) > MAX_WORKBOOK_NAME_CHARS
            or ".." in name
            or not name[:-5].strip()
        ):
            raise InvalidPackage(
                f"The package was modified: unexpected file {show(row.base + '/' + name)} for version {row.label} "
                f"(a version holds version.json, neuron.zip and one .xlsx or .xlsm workbook). {UNCHANGED}"
            )
        workbooks.append(name)
    if len(workbooks) != 1:
        found = "no workbook" if not workbooks else f"{len(workbooks)} workbooks ({', '.join(sorted(workbooks))})"
        raise InvalidPackage(
            f"The package is not importable: version {row.label} has {found}; exactly one .xlsx or .xlsm "
            f"workbook is required. {UPLOAD_PACKAGE}"
        )
    return workbooks[0]


def _read_version_json(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> dict:
    if info.file_size > MAX_VERSION_JSON_BYTES:
        raise InvalidPackage(
            f"The package's {info.filename!r} is too large ({info.file_size} bytes; at most "
            f"{MAX_VERSION_JSON_BYTES} are allowed). {UNCHANGED}"
        )
    return read_json_member(zf, info, f"The package's {show(info.filename)}", UNCHANGED)


def _check_version_metadata(metadata: dict, row: _Row, *, workbook: PackageFile, neuron: PackageFile) -> None:
    def disagree(field: str, found: object, expected: object) -> InvalidPackage:
        return InvalidPackage(
            f"The package was modified: version.json of {row.label} has {field} {show(found)} but the manifest "
            f"says {show(expected)}. {UNCHANGED}"
        )

    for field, expected in (("folder", row.folder), ("service", row.service), ("version", row.version)):
        if metadata.get(field) != expected:
            raise disagree(field, metadata.get(field), expected)
    for field, expected, required in (("version_id", row.version_id, True), ("service_id", row.service_id, False)):
        found = metadata.get(field)
        if found is None and not required:
            continue
        if not isinstance(found, str) or found.lower() != expected:
            raise disagree(field, found, expected)
    for field, entry in (("workbook", workbook), ("neuron", neuron)):
        described = metadata.get(field)
        if described is None:
            continue
        name = entry.path.rpartition("/")[2]
        if not isinstance(described, dict):
            raise disagree(field, described, name)
        if described.get("name") != name:
            raise disagree(f"{field}.name", described.get("name"), name)
        if "size" in described and described["size"] != entry.size:
            raise disagree(f"{field}.size", described["size"], entry.size)
        sha = described.get("sha256")
        if sha is not None and (not isinstance(sha, str) or sha.lower() != entry.sha256):
            raise disagree(f"{field}.sha256", sha, entry.sha256)
