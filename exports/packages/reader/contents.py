"""Package contents: manifest.json, its files list, the versions, each version.json, SHA-256."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
import zlib

from exports.packages.format import (
    MANIFEST_NAME,
    NEURON_ENTRY_NAME,
    PACKAGE_FORMAT,
    PACKAGE_FORMAT_VERSION,
    VERSION_JSON_NAME,
)
from tenants.naming import catalog_name_problem, parse_semver
from exports.packages.reader.model import (
    UNCHANGED,
    UPLOAD_PACKAGE,
    CHUNK_SIZE,
    InvalidPackage,
    PackageFile,
    PackageVersion,
    corrupt,
    hash_mismatch,
    is_int,
    is_pure_directory,
    show,
)

# The names themselves are shared with the writer in exports/packages/format.py.
SUPPORTED_FORMAT_VERSIONS = (PACKAGE_FORMAT_VERSION,)
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
MAX_WORKBOOK_NAME_CHARS = 100

MAX_MANIFEST_BYTES = 16 << 20
MAX_VERSION_JSON_BYTES = 1 << 20

_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")


def _read_json_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, fix: str):
    """Read one small member (its declared size was checked) and parse it as a JSON object."""
    try:
        data = zf.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        raise corrupt(info.filename) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPackage(f"{what} is not UTF-8 text. {fix}") from None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        detail = f" ({exc})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidPackage(f"{what} is not valid JSON{detail}. {fix}") from None
    if not isinstance(value, dict):
        raise InvalidPackage(f"{what} is not a JSON object. {fix}")
    return value


def read_manifest(zf: zipfile.ZipFile, by_name: dict[str, zipfile.ZipInfo]) -> dict:
    """Step 5: manifest.json is a supported, importable package manifest."""
    info = by_name.get(MANIFEST_NAME)
    if info is None or is_pure_directory(info):
        raise InvalidPackage(
            f"The package has no manifest.json: this is not a package exported by sparkexport. {UPLOAD_PACKAGE}"
        )
    if info.file_size > MAX_MANIFEST_BYTES:
        raise InvalidPackage(
            f"The package's manifest.json is too large ({info.file_size} bytes; at most "
            f"{MAX_MANIFEST_BYTES} are allowed). Export fewer services per package."
        )
    manifest = _read_json_member(zf, info, "The package's manifest.json", UNCHANGED)
    fmt = manifest.get("format")
    if fmt != PACKAGE_FORMAT:
        raise InvalidPackage(
            f"The package's manifest.json has format {show(fmt)}, not {PACKAGE_FORMAT!r}: this is not a "
            f"package exported by sparkexport. {UPLOAD_PACKAGE}"
        )
    version = manifest.get("format_version")
    supported = ", ".join(str(v) for v in SUPPORTED_FORMAT_VERSIONS)
    if not is_int(version) or version < 1:
        raise InvalidPackage(
            f"The package's manifest.json has an invalid format_version {show(version)} (supported: "
            f"{supported}). {UNCHANGED}"
        )
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise InvalidPackage(
            f"The package has format_version {version}, which is newer than this server supports "
            f"(supported: {supported}). Import it into a server at least as new as the one that "
            f"exported it, or export it from a server of this version."
        )
    file_filter = manifest.get("file_filter")
    if file_filter == "onpremises":
        raise InvalidPackage(
            "The package is an 'onpremises' export, which holds no workbooks and cannot be imported; "
            "export again with file_filter 'migrate'."
        )
    if file_filter != "migrate":
        raise InvalidPackage(
            f"The package's manifest.json has file_filter {show(file_filter)}; only 'migrate' "
            "packages can be imported. Export again with file_filter 'migrate'."
        )
    return manifest


def check_files(manifest: dict, by_name: dict[str, zipfile.ZipInfo]) -> dict[str, PackageFile]:
    """Step 6: manifest "files" and the ZIP entries match exactly."""
    rows = manifest.get("files")
    if not isinstance(rows, list):
        raise InvalidPackage(f'The package\'s manifest.json has no "files" list. {UNCHANGED}')
    files: dict[str, PackageFile] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidPackage(
                f"The package's manifest.json files[{index}] is not an object. {UNCHANGED}"
            )
        path, size, sha256 = row.get("path"), row.get("size"), row.get("sha256")
        if not isinstance(path, str) or not path:
            raise InvalidPackage(
                f"The package's manifest.json files[{index}] has no path. {UNCHANGED}"
            )
        if not is_int(size) or size < 0:
            raise InvalidPackage(
                f"The package's manifest.json gives {show(path)} an invalid size {show(size)}. {UNCHANGED}"
            )
        if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
            raise InvalidPackage(
                f"The package's manifest.json gives {show(path)} an invalid sha256 {show(sha256)}. {UNCHANGED}"
            )
        if path == MANIFEST_NAME:
            raise InvalidPackage(
                f'The package\'s manifest.json lists itself in "files". {UNCHANGED}'
            )
        if path in files:
            raise InvalidPackage(
                f"The package's manifest.json lists {show(path)} twice. {UNCHANGED}"
            )
        files[path] = PackageFile(path=path, size=size, sha256=sha256.lower())
    for path in files:
        info = by_name.get(path)
        if info is None or is_pure_directory(info):
            raise InvalidPackage(
                f"The package is incomplete: the manifest lists {show(path)} but the ZIP has no such entry. "
                f"{UNCHANGED}"
            )
    for name, info in by_name.items():
        if name != MANIFEST_NAME and not is_pure_directory(info) and name not in files:
            raise InvalidPackage(
                f"The package was modified: unexpected entry {show(name)} not in the manifest. {UNCHANGED}"
            )
    for path, listed in files.items():
        actual = by_name[path].file_size
        if actual != listed.size:
            raise InvalidPackage(
                f"The package was modified: entry {show(path)} is {actual} bytes but the manifest "
                f"lists {listed.size}. {UNCHANGED}"
            )
    return files


def _uuid(value: object, what: str) -> str:
    if not isinstance(value, str) or not _UUID_RE.fullmatch(value):
        raise InvalidPackage(
            f"The package's manifest.json has an invalid {what} {show(value)}: expected a UUID. {UNCHANGED}"
        )
    return value.lower()


def check_versions(
    zf: zipfile.ZipFile,
    manifest: dict,
    files: dict[str, PackageFile],
    by_name: dict[str, zipfile.ZipInfo],
) -> list[PackageVersion]:
    """Step 7: manifest "service_versions", the version folders and their version.json."""
    rows = manifest.get("service_versions")
    if not isinstance(rows, list):
        raise InvalidPackage(
            f'The package\'s manifest.json has no "service_versions" list. {UNCHANGED}'
        )
    if not rows:
        raise InvalidPackage(
            "The package holds no service versions: there is nothing to import. Export at least one service."
        )

    # Every listed file must sit directly in a version folder.
    by_folder: dict[str, list[str]] = {}
    for path in files:
        folder, _, name = path.rpartition("/")
        by_folder.setdefault(folder, []).append(name)

    parsed = []
    seen_versions: set[tuple[str, str, str]] = set()
    seen_version_ids: set[str] = set()
    service_ids: dict[tuple[str, str], str] = {}
    services_by_id: dict[str, tuple[str, str]] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidPackage(
                f"The package's manifest.json service_versions[{index}] is not an object. {UNCHANGED}"
            )
        folder, service, version = (
            row.get("folder_source"),
            row.get("service_source"),
            row.get("version_source"),
        )
        for what, name in (("folder", folder), ("service", service)):
            problem = catalog_name_problem(name)
            if problem:
                raise InvalidPackage(
                    f"The package's manifest.json has an invalid {what} name {show(name)}: {problem}. {UNCHANGED}"
                )
        semver = parse_semver(version)
        if semver is None:
            raise InvalidPackage(
                f"The package's manifest.json has an invalid version {show(version)} for {folder}/{service}: "
                f"expected MAJOR.MINOR.PATCH (e.g. 1.2.3). {UNCHANGED}"
            )
        label = f"{folder}/{service}[{version}]"
        service_id = _uuid(row.get("service_id_source"), f"service_id_source for {label}")
        version_id = _uuid(row.get("version_id_source"), f"version_id_source for {label}")
        if (folder, service, version) in seen_versions:
            raise InvalidPackage(
                f"The package's manifest.json lists version {show(label)} twice. {UNCHANGED}"
            )
        seen_versions.add((folder, service, version))
        if version_id in seen_version_ids:
            raise InvalidPackage(
                f"The package's manifest.json gives two versions the version_id {version_id}. {UNCHANGED}"
            )
        seen_version_ids.add(version_id)
        if service_ids.setdefault((folder, service), service_id) != service_id:
            raise InvalidPackage(
                f"The package's manifest.json gives service {folder}/{service} two different service ids. {UNCHANGED}"
            )
        if services_by_id.setdefault(service_id, (folder, service)) != (folder, service):
            raise InvalidPackage(
                f"The package's manifest.json gives two services the service_id {service_id}. {UNCHANGED}"
            )
        parsed.append((semver, folder, service, version, service_id, version_id, label))

    known = {f"{folder}/{service}/{version}" for _, folder, service, version, *_ in parsed}
    for folder_path, names in by_folder.items():
        if folder_path not in known:
            raise InvalidPackage(
                f"The package was modified: unexpected file {show(folder_path + '/' + names[0])} in the "
                f"manifest, outside every service version's folder. {UNCHANGED}"
            )

    versions = []
    for semver, folder, service, version, service_id, version_id, label in parsed:
        base = f"{folder}/{service}/{version}"
        names = by_folder.get(base, [])
        for required in (VERSION_JSON_NAME, NEURON_ENTRY_NAME):
            if required not in names:
                raise InvalidPackage(
                    f"The package is incomplete: version {label} has no {required} (expected "
                    f"{show(base + '/' + required)}). {UNCHANGED}"
                )
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
                    f"The package was modified: unexpected file {show(base + '/' + name)} for version {label} "
                    f"(a version holds version.json, neuron.zip and one .xlsx or .xlsm workbook). {UNCHANGED}"
                )
            workbooks.append(name)
        if len(workbooks) != 1:
            found = (
                "no workbook"
                if not workbooks
                else f"{len(workbooks)} workbooks ({', '.join(sorted(workbooks))})"
            )
            raise InvalidPackage(
                f"The package is not importable: version {label} has {found}; exactly one .xlsx or .xlsm "
                f"workbook is required. {UPLOAD_PACKAGE}"
            )
        workbook = files[f"{base}/{workbooks[0]}"]
        neuron = files[f"{base}/{NEURON_ENTRY_NAME}"]
        metadata = _read_version_json(zf, by_name[f"{base}/{VERSION_JSON_NAME}"], label)
        _check_version_metadata(
            metadata,
            label,
            folder=folder,
            service=service,
            version=version,
            service_id=service_id,
            version_id=version_id,
            workbook=workbook,
            neuron=neuron,
        )
        versions.append(
            PackageVersion(
                folder=folder,
                service=service,
                service_id=service_id,
                version=version,
                version_id=version_id,
                metadata=metadata,
                workbook=workbook,
                neuron=neuron,
            )
        )
    versions.sort(key=lambda v: (v.folder, v.service, v.semver))
    return versions


def _read_version_json(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> dict:
    if info.file_size > MAX_VERSION_JSON_BYTES:
        raise InvalidPackage(
            f"The package's {info.filename!r} is too large ({info.file_size} bytes; at most "
            f"{MAX_VERSION_JSON_BYTES} are allowed). {UNCHANGED}"
        )
    return _read_json_member(zf, info, f"The package's {show(info.filename)}", UNCHANGED)


def _check_version_metadata(
    metadata: dict,
    label: str,
    *,
    folder: str,
    service: str,
    version: str,
    service_id: str,
    version_id: str,
    workbook: PackageFile,
    neuron: PackageFile,
) -> None:
    def disagree(field: str, found: object, expected: object) -> InvalidPackage:
        return InvalidPackage(
            f"The package was modified: version.json of {label} has {field} {show(found)} but the manifest "
            f"says {show(expected)}. {UNCHANGED}"
        )

    for field, expected in (("folder", folder), ("service", service), ("version", version)):
        if metadata.get(field) != expected:
            raise disagree(field, metadata.get(field), expected)
    for field, expected, required in (
        ("version_id", version_id, True),
        ("service_id", service_id, False),
    ):
        found = metadata.get(field)
        if found is None and not required:
            continue
        if not isinstance(found, str) or found.lower() != expected:
            raise disagree(field, found, expected)
    for field, entry in (("workbook", workbook), ("neuron", neuron)):
        described = metadata.get(field)
        if described is None:
            continue
        if not isinstance(described, dict):
            raise disagree(field, described, entry.path.rpartition("/")[2])
        name = entry.path.rpartition("/")[2]
        if described.get("name") != name:
            raise disagree(f"{field}.name", described.get("name"), name)
        if "size" in described and described["size"] != entry.size:
            raise disagree(f"{field}.size", described["size"], entry.size)
        sha = described.get("sha256")
        if sha is not None and (not isinstance(sha, str) or sha.lower() != entry.sha256):
            raise disagree(f"{field}.sha256", sha, entry.sha256)


def check_hashes(zf: zipfile.ZipFile, files: dict[str, PackageFile]) -> None:
    """Step 8: stream every listed member and compare its SHA-256 with the manifest."""
    for listed in files.values():
        digest = hashlib.sha256()
        try:
            with zf.open(listed.path) as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    digest.update(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError):
            raise corrupt(listed.path) from None
        if digest.hexdigest() != listed.sha256:
            raise hash_mismatch(listed.path)
