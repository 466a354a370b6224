"""Package contents: manifest.json, its files list, and every member's SHA-256 (the versions and
their version.json are versions.py's)."""

from __future__ import annotations

import hashlib
import re
import zipfile
import zlib
from dataclasses import replace

from exports.packages.format import MANIFEST_NAME, PACKAGE_FORMAT, PACKAGE_FORMAT_VERSION
from sparkexport.json_input import JSONInputError, parse_json
from exports.packages.reader.digests import BackgroundDigest, Crc32, digest_thread
from exports.packages.reader.model import (
    CHUNK_SIZE,
    UNCHANGED,
    UPLOAD_PACKAGE,
    InvalidPackage,
    PackageFile,
    corrupt,
    hash_mismatch,
    is_int,
    is_pure_directory,
    show,
)

# The names themselves are shared with the writer in exports/packages/format.py.
SUPPORTED_FORMAT_VERSIONS = (PACKAGE_FORMAT_VERSION,)

MAX_MANIFEST_BYTES = 16 << 20

_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")


def read_json_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, fix: str):
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
        value = parse_json(text)
    except JSONInputError as exc:
        raise InvalidPackage(f"{what} is {exc}. {fix}") from None
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
    manifest = read_json_member(zf, info, "The package's manifest.json", UNCHANGED)
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


def check_files(
    manifest: dict, by_name: dict[str, zipfile.ZipInfo], data_offsets: dict[str, int]
) -> dict[str, PackageFile]:
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
    return {
        path: replace(listed, crc32=by_name[path].CRC, data_offset=data_offsets[path],
                      stored=by_name[path].compress_type == zipfile.ZIP_STORED)
        for path, listed in files.items()
    }


def check_hashes(fh, zf: zipfile.ZipFile, files: dict[str, PackageFile], *, whole_file: bool) -> str | None:
    """Step 8: every listed member's SHA-256 against the manifest; with `whole_file`, answers the
    file's own SHA-256, from the same read.

    Members stored uncompressed (workbooks and Neuron packages: nearly all the bytes) are hashed
    as the file is read once from start to end, with their CRC-32 against the ZIP's; the others
    (manifest, version.json: small) through zipfile, which checks their CRC-32.
    """
    in_place = sorted((f for f in files.values() if f.stored and f.size), key=lambda f: f.data_offset)
    for listed in files.values():
        if not (listed.stored and listed.size):
            _check_through_zipfile(zf, listed)
    if not in_place and not whole_file:
        return None
    return _check_in_place(fh, in_place, whole_file)


def _check_through_zipfile(zf: zipfile.ZipFile, listed: PackageFile) -> None:
    digest = hashlib.sha256()
    try:
        with zf.open(listed.path) as stream:
            while chunk := stream.read(CHUNK_SIZE):
                digest.update(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        raise corrupt(listed.path) from None
    if digest.hexdigest() != listed.sha256:
        raise hash_mismatch(listed.path)


def _check_in_place(fh, members: list[PackageFile], whole_file: bool) -> str | None:
    """One read of the file, start to end: each member's SHA-256 and CRC-32 as its bytes go by,
    and the file's SHA-256. The CRC-32s and the file's SHA-256 are computed on a second thread
    (digests.py), the members' SHA-256s on this one. Members do not overlap
    (zip_safety.check_bombs)."""
    with digest_thread() as thread:
        whole = BackgroundDigest(hashlib.sha256(), thread) if whole_file else None
        pending = iter(members)
        member = next(pending, None)
        digest, crc, position = hashlib.sha256(), BackgroundDigest(Crc32(), thread), 0
        fh.seek(0)
        while (whole_file or member is not None) and (chunk := fh.read(CHUNK_SIZE)):
            if whole is not None:
                whole.update(chunk)
            end = position + len(chunk)
            while member is not None and member.data_offset < end:
                member_end = member.data_offset + member.size
                part = memoryview(chunk)[max(member.data_offset, position) - position:min(member_end, end) - position]
                crc.update(part)
                digest.update(part)
                if member_end > end:
                    break  # it goes on in the next chunk
                crc.wait()
                if crc.digest.value != member.crc32:  # as zipfile would find it: damaged, not altered
                    raise corrupt(member.path)
                if digest.hexdigest() != member.sha256:
                    raise hash_mismatch(member.path)
                member, digest, crc = next(pending, None), hashlib.sha256(), BackgroundDigest(Crc32(), thread)
            position = end
        if member is not None:
            raise corrupt(member.path)
        if whole is None:
            return None
        whole.wait()
        return whole.digest.hexdigest()
