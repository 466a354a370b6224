"""Check an uploaded export package before importing it, then stream its members.

`read_package(path, max_uncompressed_bytes=...)` validates a ZIP written by
`exports.packaging.write_package` with the layout of `exports.package_contents`
(see the contract's "Package layout") and returns a `Package` describing every
service version in it.  Nothing is extracted to disk and nothing is written
anywhere: the caller stores members under keys it chooses, through
`open_member(path, member)`.

Checks, in order (the first failure raises `InvalidPackage`, whose message says
what is wrong and what to do):

1. the upload is a ZIP that zipfile can open (empty, not a ZIP, truncated, corrupt);
2. at most MAX_ENTRIES entries (also checked from the end-of-central-directory
   record before zipfile parses the central directory);
3. every entry name is safe: no absolute path, drive letter, backslash, control
   character (NUL included), empty, '.' or '..' component; no symlink or other
   special file; no duplicate (also after Unicode NFC normalisation); no
   encrypted entry; only STORED or DEFLATED members;
4. zip-bomb checks on the central directory, before anything is decompressed:
   total declared size, per-entry compression ratio (entries over 1 MiB),
   overlapping entries (CVE-2024-0450: this interpreter lacks zipfile's check);
5. manifest.json: present, at most MAX_MANIFEST_BYTES, a UTF-8 JSON object,
   format/format_version/file_filter of an importable package;
6. manifest "files" matches the ZIP entries exactly (paths and sizes);
7. manifest "service_versions": valid names, versions and UUIDs, no duplicates;
   each version folder holds exactly version.json, neuron.zip and one workbook,
   and version.json agrees with its manifest row;
8. every listed member is streamed (constant memory) and its SHA-256 compared
   with the manifest.

Decisions:

- Pure directory entries (a name ending in '/', no data) are ignored: they hold
  nothing and are never extracted.  Their names must still be safe.  A directory
  entry holding data is rejected.
- Only files of the documented layout are accepted: a listed file outside every
  version folder, or an extra file in a version folder, is rejected.
- UUIDs must be in the canonical 8-4-4-4-12 hex form; `PackageVersion` carries
  them lower-cased.
- `open_member` re-checks size and SHA-256 while streaming, so a file swapped
  between `read_package` and `open_member` fails instead of importing silently.

Only the standard library is used (no Django), like exports/packaging.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Self

from exports.package_format import (
    MANIFEST_NAME,
    NEURON_ENTRY_NAME,
    PACKAGE_FORMAT,
    PACKAGE_FORMAT_VERSION,
    VERSION_JSON_NAME,
)

__all__ = [
    "MAX_COMPRESSION_RATIO",
    "MAX_ENTRIES",
    "MAX_MANIFEST_BYTES",
    "MAX_VERSION_JSON_BYTES",
    "InvalidPackage",
    "Package",
    "PackageFile",
    "PackageVersion",
    "open_member",
    "read_package",
]

# The names themselves are shared with the writer in exports/package_format.py.
SUPPORTED_FORMAT_VERSIONS = (PACKAGE_FORMAT_VERSION,)
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
MAX_WORKBOOK_NAME_CHARS = 100

MAX_ENTRIES = 20_000
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 1 << 20  # the ratio limit applies to entries declaring more than this
MAX_MANIFEST_BYTES = 16 << 20
MAX_VERSION_JSON_BYTES = 1 << 20
CHUNK_SIZE = 1 << 20
# Upper bound of one central-directory record in a package (46-byte header, a path of
# folder/service/version/workbook and a zip64 extra field), to refuse a huge central
# directory before zipfile turns every record into a ZipInfo object.
_MAX_CENTRAL_RECORD_BYTES = 46 + 1024

# Same rules as tenants/naming.py (copied: that module imports Django).
CATALOG_NAME_RE = re.compile(r"[A-Za-z0-9_.\- ]{1,100}")
SEMVER_RE = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")

_S_IFMT = 0o170000
_S_IFREG = 0o100000
_S_IFDIR = 0o040000
_S_IFLNK = 0o120000
_FLAG_ENCRYPTED = 0x1
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # 30 bytes, as zipfile's structFileHeader
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
_SUPPORTED_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}

_UPLOAD_PACKAGE = "Upload the package.zip produced by a 'migrate' export."
_UNCHANGED = "Upload the package.zip produced by a 'migrate' export, unchanged."
_EXPORT_AGAIN = "Export it again and upload the new package.zip."


class InvalidPackage(Exception):
    """The upload is not an importable package; str(e) names the problem and how to fix it."""


@dataclass(frozen=True)
class PackageFile:
    """One member of the package as listed in the manifest (and checked against the ZIP)."""

    path: str  # archive path
    size: int
    sha256: str


@dataclass(frozen=True)
class PackageVersion:
    """One service version of the package: its manifest row, version.json and files."""

    folder: str
    service: str
    service_id: str
    version: str
    version_id: str
    metadata: dict  # the parsed version.json
    workbook: PackageFile  # the original workbook entry
    neuron: PackageFile  # the neuron.zip entry

    @property
    def semver(self) -> tuple[int, int, int]:
        return _parse_semver(self.version)


@dataclass(frozen=True)
class Package:
    """A checked package: its manifest and its versions sorted by folder, service and semver."""

    manifest: dict
    versions: list[PackageVersion]


# --------------------------------------------------------------------------- helpers


def _show(value: object, limit: int = 120) -> str:
    """A quoted, escaped, length-limited rendering of an untrusted value for messages."""
    text = repr(value) if isinstance(value, str) else repr(str(value))
    if len(text) > limit:
        text = text[: limit - 4] + "...'"
    return text


def _parse_semver(version: str) -> tuple[int, int, int] | None:
    match = SEMVER_RE.fullmatch(version) if isinstance(version, str) else None
    return tuple(int(part) for part in match.groups()) if match else None


def _catalog_name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not CATALOG_NAME_RE.fullmatch(name):
        return "use 1-100 letters, digits, '-', '_', '.' or spaces"
    if ".." in name or name == "." or name != name.strip():
        return "it may not contain '..', be '.', or start or end with a space"
    return None


def _name_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry name is unsafe, or None when it is safe."""
    raw = info.orig_filename  # zipfile silently cuts ZipInfo.filename at a NUL
    if raw != info.filename or _CONTROL_CHARS.search(raw):
        return "it contains a control character"
    if not raw:
        return "it is empty"
    if "\\" in raw:
        return "it contains a backslash"
    if raw.startswith("/"):
        return "it is an absolute path"
    if _DRIVE.match(raw):
        return "it starts with a drive letter"
    name = raw.removesuffix("/")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            return "it has an empty, '.' or '..' component"
    return None


def _is_pure_directory(info: zipfile.ZipInfo) -> bool:
    return info.filename.endswith("/")


def _corrupt(name: str) -> InvalidPackage:
    return InvalidPackage(
        f"The package is corrupt: entry {_show(name)} is corrupt (its data does not match its "
        f"checksum or cannot be decompressed). {_EXPORT_AGAIN}"
    )


def _is_zip(fh: BinaryIO) -> bool:
    try:
        return zipfile.is_zipfile(fh)
    finally:
        fh.seek(0)


def _read_json_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, fix: str):
    """Read one small member (its declared size was checked) and parse it as a JSON object."""
    try:
        data = zf.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        raise _corrupt(info.filename) from None
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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------- the checks


def _open_zip(fh: BinaryIO) -> zipfile.ZipFile:
    """Step 1 (and the early part of step 2): the upload is a ZIP zipfile can open."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    if size == 0:
        raise InvalidPackage(f"The upload is empty (0 bytes). {_UPLOAD_PACKAGE}")
    head = fh.read(4)
    fh.seek(0)
    if not _is_zip(fh):
        if head == _LOCAL_HEADER_SIGNATURE:
            raise InvalidPackage(
                "The upload is a truncated or corrupt ZIP file (its central directory is missing). "
                f"Upload the package again; if it still fails, {_EXPORT_AGAIN[0].lower()}{_EXPORT_AGAIN[1:]}"
            )
        raise InvalidPackage(f"The upload is not a ZIP file. {_UPLOAD_PACKAGE}")
    _precheck_central_directory(fh)
    try:
        return zipfile.ZipFile(fh)
    except zipfile.LargeZipFile:
        raise InvalidPackage(
            f"The upload is a ZIP file this server cannot read (zip64 disabled). {_UPLOAD_PACKAGE}"
        ) from None
    except NotImplementedError as exc:
        raise InvalidPackage(
            f"The upload uses a ZIP feature that is not supported ({exc}). {_UPLOAD_PACKAGE}"
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error) as exc:
        raise InvalidPackage(
            f"The upload is a truncated or corrupt ZIP file ({exc}). "
            "Upload the package again; if it still fails, export it again."
        ) from None


def _precheck_central_directory(fh: BinaryIO) -> None:
    """Refuse an oversized central directory before zipfile builds a ZipInfo per record."""
    end_rec_data = getattr(zipfile, "_EndRecData", None)  # private, but stable since Python 2
    if end_rec_data is None:
        return
    try:
        endrec = end_rec_data(fh)
    except (OSError, struct.error, ValueError):
        return  # zipfile.ZipFile reports the problem
    finally:
        fh.seek(0)
    if not endrec:
        return
    declared_entries, cd_size = endrec[zipfile._ECD_ENTRIES_TOTAL], endrec[zipfile._ECD_SIZE]
    if declared_entries > MAX_ENTRIES or cd_size > MAX_ENTRIES * _MAX_CENTRAL_RECORD_BYTES:
        raise _too_many_entries(declared_entries)


def _too_many_entries(count: int) -> InvalidPackage:
    return InvalidPackage(
        f"The package has too many entries ({count}; at most {MAX_ENTRIES} are allowed). "
        "Export fewer services per package and import them one package at a time."
    )


def _check_entries(infos: list[zipfile.ZipInfo]) -> None:
    """Steps 2 and 3: entry count and safe, unique names of plain files."""
    if len(infos) > MAX_ENTRIES:
        raise _too_many_entries(len(infos))
    seen: dict[str, str] = {}
    for info in infos:
        name = info.orig_filename
        problem = _name_problem(info)
        if problem:
            raise InvalidPackage(
                f"Unsafe path {_show(name)} in the package: {problem}. {_UNCHANGED}"
            )
        file_type = (info.external_attr >> 16) & _S_IFMT
        if file_type == _S_IFLNK:
            raise InvalidPackage(
                f"Unsafe entry {_show(name)} in the package: it is a symlink, and packages hold only "
                f"plain files. {_UNCHANGED}"
            )
        if file_type not in (0, _S_IFREG, _S_IFDIR):
            raise InvalidPackage(
                f"Unsafe entry {_show(name)} in the package: it is a special file (mode "
                f"{oct(file_type)}), and packages hold only plain files. {_UNCHANGED}"
            )
        if file_type == _S_IFDIR and not _is_pure_directory(info):
            raise InvalidPackage(
                f"Unsafe entry {_show(name)} in the package: it is marked as a directory but its "
                f"name does not end in '/'. {_UNCHANGED}"
            )
        if _is_pure_directory(info) and (info.file_size or info.compress_size):
            raise InvalidPackage(
                f"Unsafe entry {_show(name)} in the package: a directory entry that holds data. {_UNCHANGED}"
            )
        key = unicodedata.normalize("NFC", name)
        if key in seen:
            other = seen[key]
            same = "" if other == name else f" (same as {_show(other)} after Unicode normalisation)"
            raise InvalidPackage(
                f"Duplicate entry {_show(name)} in the package{same}: each path may appear only once. "
                f"{_UNCHANGED}"
            )
        seen[key] = name
        if info.flag_bits & _FLAG_ENCRYPTED:
            raise InvalidPackage(
                f"Encrypted entry {_show(name)} in the package: packages are never encrypted. {_UNCHANGED}"
            )
        if info.compress_type not in _SUPPORTED_COMPRESSION:
            raise InvalidPackage(
                f"Unsupported compression in entry {_show(name)} (method {info.compress_type}; only "
                f"stored and deflated members are supported). {_UNCHANGED}"
            )


def _check_bombs(
    fh: BinaryIO, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], max_uncompressed_bytes: int
) -> None:
    """Step 4: zip-bomb checks on the central directory and local headers, nothing decompressed."""
    total = sum(info.file_size for info in infos)
    if total > max_uncompressed_bytes:
        largest = max(infos, key=lambda info: info.file_size)
        raise InvalidPackage(
            f"Possible zip bomb: the entries would unpack to {total} bytes, more than the limit of "
            f"{max_uncompressed_bytes} bytes (largest entry {_show(largest.filename)}, "
            f"{largest.file_size} bytes). Export fewer services per package."
        )
    for info in infos:
        if info.file_size > RATIO_CHECK_MIN_BYTES and (
            info.compress_size == 0 or info.file_size > MAX_COMPRESSION_RATIO * info.compress_size
        ):
            ratio = (
                f"{info.file_size // info.compress_size}:1" if info.compress_size else "unbounded"
            )
            raise InvalidPackage(
                f"Possible zip bomb: entry {_show(info.filename)} unpacks from {info.compress_size} to "
                f"{info.file_size} bytes (ratio {ratio}, at most {MAX_COMPRESSION_RATIO}:1 is allowed). "
                f"{_UNCHANGED}"
            )
    # Overlapping entries ("quoted overlap", CVE-2024-0450): each member's local header and
    # data must end before the next member's local header (or the central directory) starts.
    ordered = sorted(infos, key=lambda info: info.header_offset)
    start_dir = getattr(zf, "start_dir", None)
    # A package starts with its first entry. Anything before it means zipfile found the
    # end record of some other archive: a truncated package whose stored neuron.zip ends
    # with an end record of its own, or bytes prepended to the upload.
    if ordered and ordered[0].header_offset != 0:
        raise InvalidPackage(
            "The package is truncated or corrupt: it does not start with its first entry "
            f"(the upload may have been cut off). {_EXPORT_AGAIN}"
        )
    for index, info in enumerate(ordered):
        fh.seek(info.header_offset)
        header = fh.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_HEADER_SIGNATURE:
            raise InvalidPackage(
                f"The package is corrupt: entry {_show(info.filename)} has no valid local header. "
                f"{_EXPORT_AGAIN}"
            )
        fields = _LOCAL_HEADER.unpack(header)
        name_len, extra_len = fields[10], fields[11]
        end = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len + info.compress_size
        if index + 1 < len(ordered):
            limit, limit_what = (
                ordered[index + 1].header_offset,
                f"entry {_show(ordered[index + 1].filename)}",
            )
        else:
            limit, limit_what = start_dir, "the central directory"
        if limit is not None and end > limit:
            raise InvalidPackage(
                f"Possible zip bomb: entry {_show(info.filename)} overlaps {limit_what} (overlapping "
                f"entries are a known zip-bomb technique). {_UNCHANGED}"
            )
    fh.seek(0)


def _read_manifest(zf: zipfile.ZipFile, by_name: dict[str, zipfile.ZipInfo]) -> dict:
    """Step 5: manifest.json is a supported, importable package manifest."""
    info = by_name.get(MANIFEST_NAME)
    if info is None or _is_pure_directory(info):
        raise InvalidPackage(
            f"The package has no manifest.json: this is not a package exported by sparkexport. {_UPLOAD_PACKAGE}"
        )
    if info.file_size > MAX_MANIFEST_BYTES:
        raise InvalidPackage(
            f"The package's manifest.json is too large ({info.file_size} bytes; at most "
            f"{MAX_MANIFEST_BYTES} are allowed). Export fewer services per package."
        )
    manifest = _read_json_member(zf, info, "The package's manifest.json", _UNCHANGED)
    fmt = manifest.get("format")
    if fmt != PACKAGE_FORMAT:
        raise InvalidPackage(
            f"The package's manifest.json has format {_show(fmt)}, not {PACKAGE_FORMAT!r}: this is not a "
            f"package exported by sparkexport. {_UPLOAD_PACKAGE}"
        )
    version = manifest.get("format_version")
    supported = ", ".join(str(v) for v in SUPPORTED_FORMAT_VERSIONS)
    if not _is_int(version) or version < 1:
        raise InvalidPackage(
            f"The package's manifest.json has an invalid format_version {_show(version)} (supported: "
            f"{supported}). {_UNCHANGED}"
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
            f"The package's manifest.json has file_filter {_show(file_filter)}; only 'migrate' "
            "packages can be imported. Export again with file_filter 'migrate'."
        )
    return manifest


def _check_files(manifest: dict, by_name: dict[str, zipfile.ZipInfo]) -> dict[str, PackageFile]:
    """Step 6: manifest "files" and the ZIP entries match exactly."""
    rows = manifest.get("files")
    if not isinstance(rows, list):
        raise InvalidPackage(f'The package\'s manifest.json has no "files" list. {_UNCHANGED}')
    files: dict[str, PackageFile] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidPackage(
                f"The package's manifest.json files[{index}] is not an object. {_UNCHANGED}"
            )
        path, size, sha256 = row.get("path"), row.get("size"), row.get("sha256")
        if not isinstance(path, str) or not path:
            raise InvalidPackage(
                f"The package's manifest.json files[{index}] has no path. {_UNCHANGED}"
            )
        if not _is_int(size) or size < 0:
            raise InvalidPackage(
                f"The package's manifest.json gives {_show(path)} an invalid size {_show(size)}. {_UNCHANGED}"
            )
        if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
            raise InvalidPackage(
                f"The package's manifest.json gives {_show(path)} an invalid sha256 {_show(sha256)}. {_UNCHANGED}"
            )
        if path == MANIFEST_NAME:
            raise InvalidPackage(
                f'The package\'s manifest.json lists itself in "files". {_UNCHANGED}'
            )
        if path in files:
            raise InvalidPackage(
                f"The package's manifest.json lists {_show(path)} twice. {_UNCHANGED}"
            )
        files[path] = PackageFile(path=path, size=size, sha256=sha256.lower())
    for path in files:
        info = by_name.get(path)
        if info is None or _is_pure_directory(info):
            raise InvalidPackage(
                f"The package is incomplete: the manifest lists {_show(path)} but the ZIP has no such entry. "
                f"{_UNCHANGED}"
            )
    for name, info in by_name.items():
        if name != MANIFEST_NAME and not _is_pure_directory(info) and name not in files:
            raise InvalidPackage(
                f"The package was modified: unexpected entry {_show(name)} not in the manifest. {_UNCHANGED}"
            )
    for path, listed in files.items():
        actual = by_name[path].file_size
        if actual != listed.size:
            raise InvalidPackage(
                f"The package was modified: entry {_show(path)} is {actual} bytes but the manifest "
                f"lists {listed.size}. {_UNCHANGED}"
            )
    return files


def _uuid(value: object, what: str) -> str:
    if not isinstance(value, str) or not _UUID_RE.fullmatch(value):
        raise InvalidPackage(
            f"The package's manifest.json has an invalid {what} {_show(value)}: expected a UUID. {_UNCHANGED}"
        )
    return value.lower()


def _check_versions(
    zf: zipfile.ZipFile,
    manifest: dict,
    files: dict[str, PackageFile],
    by_name: dict[str, zipfile.ZipInfo],
) -> list[PackageVersion]:
    """Step 7: manifest "service_versions", the version folders and their version.json."""
    rows = manifest.get("service_versions")
    if not isinstance(rows, list):
        raise InvalidPackage(
            f'The package\'s manifest.json has no "service_versions" list. {_UNCHANGED}'
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
                f"The package's manifest.json service_versions[{index}] is not an object. {_UNCHANGED}"
            )
        folder, service, version = (
            row.get("folder_source"),
            row.get("service_source"),
            row.get("version_source"),
        )
        for what, name in (("folder", folder), ("service", service)):
            problem = _catalog_name_problem(name)
            if problem:
                raise InvalidPackage(
                    f"The package's manifest.json has an invalid {what} name {_show(name)}: {problem}. {_UNCHANGED}"
                )
        semver = _parse_semver(version)
        if semver is None:
            raise InvalidPackage(
                f"The package's manifest.json has an invalid version {_show(version)} for {folder}/{service}: "
                f"expected MAJOR.MINOR.PATCH (e.g. 1.2.3). {_UNCHANGED}"
            )
        label = f"{folder}/{service}[{version}]"
        service_id = _uuid(row.get("service_id_source"), f"service_id_source for {label}")
        version_id = _uuid(row.get("version_id_source"), f"version_id_source for {label}")
        if (folder, service, version) in seen_versions:
            raise InvalidPackage(
                f"The package's manifest.json lists version {_show(label)} twice. {_UNCHANGED}"
            )
        seen_versions.add((folder, service, version))
        if version_id in seen_version_ids:
            raise InvalidPackage(
                f"The package's manifest.json gives two versions the version_id {version_id}. {_UNCHANGED}"
            )
        seen_version_ids.add(version_id)
        if service_ids.setdefault((folder, service), service_id) != service_id:
            raise InvalidPackage(
                f"The package's manifest.json gives service {folder}/{service} two different service ids. {_UNCHANGED}"
            )
        if services_by_id.setdefault(service_id, (folder, service)) != (folder, service):
            raise InvalidPackage(
                f"The package's manifest.json gives two services the service_id {service_id}. {_UNCHANGED}"
            )
        parsed.append((semver, folder, service, version, service_id, version_id, label))

    known = {f"{folder}/{service}/{version}" for _, folder, service, version, *_ in parsed}
    for folder_path, names in by_folder.items():
        if folder_path not in known:
            raise InvalidPackage(
                f"The package was modified: unexpected file {_show(folder_path + '/' + names[0])} in the "
                f"manifest, outside every service version's folder. {_UNCHANGED}"
            )

    versions = []
    for semver, folder, service, version, service_id, version_id, label in parsed:
        base = f"{folder}/{service}/{version}"
        names = by_folder.get(base, [])
        for required in (VERSION_JSON_NAME, NEURON_ENTRY_NAME):
            if required not in names:
                raise InvalidPackage(
                    f"The package is incomplete: version {label} has no {required} (expected "
                    f"{_show(base + '/' + required)}). {_UNCHANGED}"
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
                    f"The package was modified: unexpected file {_show(base + '/' + name)} for version {label} "
                    f"(a version holds version.json, neuron.zip and one .xlsx or .xlsm workbook). {_UNCHANGED}"
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
                f"workbook is required. {_UPLOAD_PACKAGE}"
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
            f"{MAX_VERSION_JSON_BYTES} are allowed). {_UNCHANGED}"
        )
    return _read_json_member(zf, info, f"The package's {_show(info.filename)}", _UNCHANGED)


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
            f"The package was modified: version.json of {label} has {field} {_show(found)} but the manifest "
            f"says {_show(expected)}. {_UNCHANGED}"
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


def _check_hashes(zf: zipfile.ZipFile, files: dict[str, PackageFile]) -> None:
    """Step 8: stream every listed member and compare its SHA-256 with the manifest."""
    for listed in files.values():
        digest = hashlib.sha256()
        try:
            with zf.open(listed.path) as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    digest.update(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError):
            raise _corrupt(listed.path) from None
        if digest.hexdigest() != listed.sha256:
            raise _hash_mismatch(listed.path)


def _hash_mismatch(path: str) -> InvalidPackage:
    return InvalidPackage(
        f"The package was modified: entry {_show(path)} does not match its SHA-256 in the manifest: "
        f"the package was altered or damaged in transit. {_EXPORT_AGAIN}"
    )


# --------------------------------------------------------------------------- public API


def read_package(path: str | os.PathLike, *, max_uncompressed_bytes: int) -> Package:
    """Check the package at `path` completely and describe it; raise InvalidPackage if it is not importable.

    Reads the whole file once (streaming, constant memory) and writes nothing.  An
    OSError opening `path` is not the uploader's fault and propagates unchanged.
    """
    if not _is_int(max_uncompressed_bytes) or max_uncompressed_bytes < 0:
        raise ValueError("max_uncompressed_bytes must be a non-negative int")
    with open(path, "rb") as fh, _open_zip(fh) as zf:
        infos = zf.infolist()
        _check_entries(infos)
        _check_bombs(fh, zf, infos, max_uncompressed_bytes)
        by_name = {info.filename: info for info in infos}
        manifest = _read_manifest(zf, by_name)
        files = _check_files(manifest, by_name)
        versions = _check_versions(zf, manifest, files, by_name)
        _check_hashes(zf, files)
    return Package(manifest=manifest, versions=versions)


class _MemberStream:
    """A read-only stream of one member that owns its ZipFile and checks size and SHA-256 at the end."""

    def __init__(self, zf: zipfile.ZipFile, stream, member: PackageFile):
        self._zf, self._stream, self._member = zf, stream, member
        self._digest, self._read = hashlib.sha256(), 0
        self._verified = False
        self.name = member.path
        self.size = member.size
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed member stream")
        try:
            data = self._stream.read(size)
        except (zipfile.BadZipFile, zlib.error, EOFError):
            raise _corrupt(self._member.path) from None
        self._digest.update(data)
        self._read += len(data)
        if (not data or self._read >= self._member.size) and not self._verified:
            self._verify()
        return data

    def _verify(self) -> None:
        if self._read != self._member.size or self._digest.hexdigest() != self._member.sha256:
            raise _hash_mismatch(self._member.path)
        self._verified = True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._stream.close()
        finally:
            self._zf.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __iter__(self):
        while chunk := self.read(CHUNK_SIZE):
            yield chunk


def open_member(path: str | os.PathLike, member: PackageFile) -> BinaryIO:
    """A readable stream of one member's bytes; closing it also closes the ZIP.

    Use it on a package `read_package` accepted.  The stream raises InvalidPackage if
    the member turns out corrupt or its bytes differ from `member.size`/`member.sha256`
    (for instance if the file changed after it was checked).
    """
    zf = zipfile.ZipFile(path)
    try:
        info = zf.getinfo(member.path)
        if info.file_size != member.size:
            raise _hash_mismatch(member.path)
        stream = zf.open(info)
    except KeyError:
        zf.close()
        raise InvalidPackage(
            f"The package is incomplete: the ZIP has no entry {_show(member.path)}. {_UNCHANGED}"
        ) from None
    except (zipfile.BadZipFile, zlib.error, EOFError):
        zf.close()
        raise _corrupt(member.path) from None
    except BaseException:
        zf.close()
        raise
    return _MemberStream(zf, stream, member)
