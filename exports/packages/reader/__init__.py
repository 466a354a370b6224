"""Check an uploaded export package before importing it, then stream its members.

`read_package(path, max_uncompressed_bytes=...)` validates a ZIP written by
`exports.packages.writer.write_package` with the layout of `exports.packages.contents`
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

The checks live in `zip_safety` (steps 1-4, and `open_member`'s stream), `contents`
(steps 5, 6 and 8) and `versions` (step 7); `model` holds the exception, the data classes
and the message helpers they use. Entry-path safety is sparkexport/zip_paths.py, names and
versions tenants/naming.py.

Only the standard library is used (no Django), like exports/packages/writer.py.
"""

from __future__ import annotations

import os

from exports.packages.reader.contents import MAX_MANIFEST_BYTES, check_files, check_hashes, read_manifest
from exports.packages.reader.model import (
    InvalidPackage,
    Package,
    PackageFile,
    PackageVersion,
    is_int,
)
from exports.packages.reader.versions import MAX_VERSION_JSON_BYTES, check_versions
from exports.packages.reader.zip_safety import (
    MAX_COMPRESSION_RATIO,
    MAX_ENTRIES,
    PackageMembers,
    check_bombs,
    check_entries,
    open_member,
    open_zip,
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
    "PackageMembers",
    "open_member",
    "read_package",
]

# The MAX_* limits are re-exported for reading only: each is read in the module that
# defines it (zip_safety, contents or versions), so patch it there.


def read_package(path: str | os.PathLike, *, max_uncompressed_bytes: int, hash_version_files: bool = True,
                 file_sha256: str | None = None) -> Package:
    """Check the package at `path` completely and describe it; raise InvalidPackage if it is not importable.

    Reads the whole file once (streaming, constant memory) and writes nothing; the Package's
    `sha256` is the file's, from that read, or `file_sha256` when the caller knows it (computed
    as the file was received).  An OSError opening `path` is not the uploader's fault and
    propagates unchanged.
    With `hash_version_files` False the versions' workbooks and Neuron packages are not hashed
    (everything else is): for a reader that takes them through `open_member`, which does.
    """
    if not is_int(max_uncompressed_bytes) or max_uncompressed_bytes < 0:
        raise ValueError("max_uncompressed_bytes must be a non-negative int")
    with open(path, "rb") as fh, open_zip(fh) as zf:
        infos = zf.infolist()
        check_entries(infos)
        data_offsets = check_bombs(fh, zf, infos, max_uncompressed_bytes)
        by_name = {info.filename: info for info in infos}
        manifest = read_manifest(zf, by_name)
        files = check_files(manifest, by_name, data_offsets)
        versions = check_versions(zf, manifest, files, by_name)
        if not hash_version_files:
            deferred = {member.path for version in versions for member in (version.workbook, version.neuron)}
            files = {path: listed for path, listed in files.items() if path not in deferred}
        sha256 = check_hashes(fh, zf, files, whole_file=hash_version_files and file_sha256 is None)
    return Package(manifest=manifest, versions=versions, sha256=file_sha256 or sha256)
