"""ZIP-container safety of an upload: entry count, names, types, encryption, zip bombs, streams."""

from __future__ import annotations

import hashlib
import os
import struct
import unicodedata
import zipfile
import zlib
from typing import BinaryIO, Self

from sparkexport.zip_paths import entry_path_problem

from exports.packages.reader.model import (
    EXPORT_AGAIN,
    UNCHANGED,
    UPLOAD_PACKAGE,
    CHUNK_SIZE,
    InvalidPackage,
    PackageFile,
    corrupt,
    hash_mismatch,
    is_pure_directory,
    show,
)
from exports.packages.reader.window import open_stored_member

MAX_ENTRIES = 20_000
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 1 << 20  # the ratio limit applies to entries declaring more than this
# Upper bound of one central-directory record in a package (46-byte header, a path of
# folder/service/version/workbook and a zip64 extra field), to refuse a huge central
# directory before zipfile turns every record into a ZipInfo object.
_MAX_CENTRAL_RECORD_BYTES = 46 + 1024


_S_IFMT = 0o170000
_S_IFREG = 0o100000
_S_IFDIR = 0o040000
_S_IFLNK = 0o120000
_FLAG_ENCRYPTED = 0x1
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # 30 bytes, as zipfile's structFileHeader
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
_SUPPORTED_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


# --------------------------------------------------------------------------- helpers


def _name_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry name is unsafe, or None when it is safe."""
    raw = info.orig_filename  # zipfile silently cuts ZipInfo.filename at a NUL
    if raw != info.filename:
        return "it contains a control character"
    return entry_path_problem(raw)


def _is_zip(fh: BinaryIO) -> bool:
    try:
        return zipfile.is_zipfile(fh)
    finally:
        fh.seek(0)


# --------------------------------------------------------------------------- the checks


def open_zip(fh: BinaryIO) -> zipfile.ZipFile:
    """Step 1 (and the early part of step 2): the upload is a ZIP zipfile can open."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    if size == 0:
        raise InvalidPackage(f"The upload is empty (0 bytes). {UPLOAD_PACKAGE}")
    head = fh.read(4)
    fh.seek(0)
    if not _is_zip(fh):
        if head == _LOCAL_HEADER_SIGNATURE:
            raise InvalidPackage(
                "The upload is a truncated or corrupt ZIP file (its central directory is missing). "
                f"Upload the package again; if it still fails, {EXPORT_AGAIN[0].lower()}{EXPORT_AGAIN[1:]}"
            )
        raise InvalidPackage(f"The upload is not a ZIP file. {UPLOAD_PACKAGE}")
    _precheck_central_directory(fh)
    try:
        return zipfile.ZipFile(fh)
    except zipfile.LargeZipFile:
        raise InvalidPackage(
            f"The upload is a ZIP file this server cannot read (zip64 disabled). {UPLOAD_PACKAGE}"
        ) from None
    except NotImplementedError as exc:
        raise InvalidPackage(
            f"The upload uses a ZIP feature that is not supported ({exc}). {UPLOAD_PACKAGE}"
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


def check_entries(infos: list[zipfile.ZipInfo]) -> None:
    """Steps 2 and 3: entry count and safe, unique names of plain files."""
    if len(infos) > MAX_ENTRIES:
        raise _too_many_entries(len(infos))
    seen: dict[str, str] = {}
    for info in infos:
        name = info.orig_filename
        problem = _name_problem(info)
        if problem:
            raise InvalidPackage(
                f"Unsafe path {show(name)} in the package: {problem}. {UNCHANGED}"
            )
        file_type = (info.external_attr >> 16) & _S_IFMT
        if file_type == _S_IFLNK:
            raise InvalidPackage(
                f"Unsafe entry {show(name)} in the package: it is a symlink, and packages hold only "
                f"plain files. {UNCHANGED}"
            )
        if file_type not in (0, _S_IFREG, _S_IFDIR):
            raise InvalidPackage(
                f"Unsafe entry {show(name)} in the package: it is a special file (mode "
                f"{oct(file_type)}), and packages hold only plain files. {UNCHANGED}"
            )
        if file_type == _S_IFDIR and not is_pure_directory(info):
            raise InvalidPackage(
                f"Unsafe entry {show(name)} in the package: it is marked as a directory but its "
                f"name does not end in '/'. {UNCHANGED}"
            )
        if is_pure_directory(info) and (info.file_size or info.compress_size):
            raise InvalidPackage(
                f"Unsafe entry {show(name)} in the package: a directory entry that holds data. {UNCHANGED}"
            )
        key = unicodedata.normalize("NFC", name)
        if key in seen:
            other = seen[key]
            same = "" if other == name else f" (same as {show(other)} after Unicode normalisation)"
            raise InvalidPackage(
                f"Duplicate entry {show(name)} in the package{same}: each path may appear only once. "
                f"{UNCHANGED}"
            )
        seen[key] = name
        if info.flag_bits & _FLAG_ENCRYPTED:
            raise InvalidPackage(
                f"Encrypted entry {show(name)} in the package: packages are never encrypted. {UNCHANGED}"
            )
        if info.compress_type not in _SUPPORTED_COMPRESSION:
            raise InvalidPackage(
                f"Unsupported compression in entry {show(name)} (method {info.compress_type}; only "
                f"stored and deflated members are supported). {UNCHANGED}"
            )


def check_bombs(
    fh: BinaryIO, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], max_uncompressed_bytes: int
) -> dict[str, int]:
    """Step 4: zip-bomb checks on the central directory and local headers, nothing decompressed.
    Answers where each entry's data starts in the file."""
    total = sum(info.file_size for info in infos)
    if total > max_uncompressed_bytes:
        largest = max(infos, key=lambda info: info.file_size)
        raise InvalidPackage(
            f"Possible zip bomb: the entries would unpack to {total} bytes, more than the limit of "
            f"{max_uncompressed_bytes} bytes (largest entry {show(largest.filename)}, "
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
                f"Possible zip bomb: entry {show(info.filename)} unpacks from {info.compress_size} to "
                f"{info.file_size} bytes (ratio {ratio}, at most {MAX_COMPRESSION_RATIO}:1 is allowed). "
                f"{UNCHANGED}"
            )
    return _data_offsets(fh, zf, infos)


def _data_offsets(fh: BinaryIO, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> dict[str, int]:
    """Where each entry's data starts, from its local header; no entry may overlap the next.

    Overlapping entries ("quoted overlap", CVE-2024-0450): each member's local header and
    data must end before the next member's local header (or the central directory) starts.
    """
    ordered = sorted(infos, key=lambda info: info.header_offset)
    start_dir = getattr(zf, "start_dir", None)
    # A package starts with its first entry. Anything before it means zipfile found the
    # end record of some other archive: a truncated package whose stored neuron.zip ends
    # with an end record of its own, or bytes prepended to the upload.
    if ordered and ordered[0].header_offset != 0:
        raise InvalidPackage(
            "The package is truncated or corrupt: it does not start with its first entry "
            f"(the upload may have been cut off). {EXPORT_AGAIN}"
        )
    data_offsets = {}
    for index, info in enumerate(ordered):
        fh.seek(info.header_offset)
        header = fh.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_HEADER_SIGNATURE:
            raise InvalidPackage(
                f"The package is corrupt: entry {show(info.filename)} has no valid local header. "
                f"{EXPORT_AGAIN}"
            )
        fields = _LOCAL_HEADER.unpack(header)
        name_len, extra_len = fields[10], fields[11]
        data_offsets[info.filename] = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        end = data_offsets[info.filename] + info.compress_size
        if index + 1 < len(ordered):
            limit, limit_what = (
                ordered[index + 1].header_offset,
                f"entry {show(ordered[index + 1].filename)}",
            )
        else:
            limit, limit_what = start_dir, "the central directory"
        if limit is not None and end > limit:
            raise InvalidPackage(
                f"Possible zip bomb: entry {show(info.filename)} overlaps {limit_what} (overlapping "
                f"entries are a known zip-bomb technique). {UNCHANGED}"
            )
    fh.seek(0)
    return data_offsets


# --------------------------------------------------------------------------- member streams


class _MemberStream:
    """A read-only stream of one member that checks its size and SHA-256 at the end (or, told
    not to, its size and CRC-32: computed here with `check_crc32`, for a stream of raw bytes,
    else by zipfile's stream); it closes `zf` if it owns one."""

    def __init__(self, zf: zipfile.ZipFile | None, stream, member: PackageFile, check_sha256: bool = True,
                 on_read=None, check_crc32: bool = False):
        self._zf, self._stream, self._member, self._on_read = zf, stream, member, on_read
        self._digest, self._read = (hashlib.sha256() if check_sha256 else None), 0
        self._crc32 = 0 if check_crc32 else None
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
            raise corrupt(self._member.path) from None
        if self._digest is not None:
            self._digest.update(data)
        if self._crc32 is not None:
            self._crc32 = zlib.crc32(data, self._crc32)
        self._read += len(data)
        if self._on_read is not None:
            self._on_read(len(data))
        if (not data or self._read >= self._member.size) and not self._verified:
            self._verify()
        return data

    def _verify(self) -> None:
        if self._read != self._member.size or (
            self._digest is not None and self._digest.hexdigest() != self._member.sha256
        ):
            raise hash_mismatch(self._member.path)
        if self._crc32 is not None and self._crc32 != self._member.crc32:
            raise corrupt(self._member.path)
        self._verified = True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._stream.close()
        finally:
            if self._zf is not None:
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
        return _MemberStream(zf, _open_checked(zf, member), member)
    except BaseException:
        zf.close()
        raise


class PackageMembers:
    """The members of a package `read_package` accepted, read one after another through one
    open ZIP: its directory is parsed once, not once per member."""

    def __init__(self, path: str | os.PathLike):
        self._path = path
        self._zf = zipfile.ZipFile(path)

    def open(self, member: PackageFile, *, check_sha256: bool = True, on_read=None) -> BinaryIO:
        """As `open_member`; with `check_sha256` False (members whose SHA-256 was checked
        before), the bytes are checked by size and CRC-32, and a member stored uncompressed is
        read in place. Members may be read on several threads at once.
        `on_read` is called with the size of every chunk read (for progress reports)."""
        if not check_sha256 and (window := open_stored_member(self._path, member)) is not None:
            return _MemberStream(None, window, member, check_sha256=False, on_read=on_read, check_crc32=True)
        return _MemberStream(None, _open_checked(self._zf, member), member, check_sha256, on_read)

    def close(self) -> None:
        self._zf.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _open_checked(zf: zipfile.ZipFile, member: PackageFile):
    try:
        info = zf.getinfo(member.path)
        if info.file_size != member.size:
            raise hash_mismatch(member.path)
        return zf.open(info)
    except KeyError:
        raise InvalidPackage(
            f"The package is incomplete: the ZIP has no entry {show(member.path)}. {UNCHANGED}"
        ) from None
    except (zipfile.BadZipFile, zlib.error, EOFError):
        raise corrupt(member.path) from None
