"""Deterministic, single-pass ZIP packaging.

`write_package` streams entries, in the order the caller gives, into a ZIP
written straight to an output file object.  The archive is deterministic: the
same entries always produce the same bytes (fixed timestamps, permissions and
host system, no extra fields or comments).  Each member is either STORED (for
formats that are already compressed) or DEFLATED.  The output is written in a
single pass through an unseekable sink, so zipfile emits data descriptors
instead of seeking back to patch headers; the SHA-256 and size of the whole
archive are therefore computed in the same pass as writing.  Memory use is
constant: members are copied in fixed-size chunks.
"""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable

from sparkexport.zip_paths import entry_path_problem

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
STOP_CHECK_INTERVAL = 0.25  # seconds between should_stop() calls inside one member

_STORED_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".zip", ".gz", ".png", ".jpg", ".jpeg")

# Indirection so tests can drive the time-based stop check with a fake clock.
_clock = time.monotonic


@dataclass(frozen=True)
class Entry:
    """One archive member: its path, expected size, opener, and what its bytes must match.

    The ZIP needs every member's CRC-32 anyway, so a member whose CRC-32 was recorded is checked
    against it at no extra cost; only one without is checked against its SHA-256, a second hash
    over every byte. A deliberate collision of the weaker check still fails at import, where
    every member's SHA-256 is compared with the manifest.
    """

    path: str
    size: int
    open: Callable[[], BinaryIO]
    sha256: str | None = None
    crc32: int | None = None


@dataclass(frozen=True)
class PackageResult:
    """Size, SHA-256 and member count of a written package, and each member's CRC-32."""

    size: int
    sha256: str
    entries: int
    crc32: dict[str, int]


class PackagingError(Exception):
    """Base class for packaging failures."""


class UnsafeEntryPath(PackagingError):
    """An entry path is unsafe to extract or is a duplicate."""


class EntryChanged(PackagingError):
    """An entry's bytes differ from its declared size or SHA-256."""


class PackageTooLarge(PackagingError):
    """The package grew beyond max_size bytes."""

    def __init__(self, written: int, limit: int):
        # Keep the constructor arguments as args so the exception pickles cleanly.
        super().__init__(written, limit)
        self.written, self.limit = written, limit

    def __str__(self) -> str:
        return f"package exceeds the size limit: would reach {self.written} bytes, limit is {self.limit} bytes"


class PackagingStopped(PackagingError):
    """should_stop() asked packaging to stop; .reason is the value it returned."""

    def __init__(self, reason: object):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"packaging stopped: {self.reason}"


def should_store(path: str) -> bool:
    """Return True if the member is already compressed and should be STORED rather than deflated."""
    return path.lower().endswith(_STORED_SUFFIXES)


def bytes_entry(path: str, data: bytes) -> Entry:
    """Build an Entry over in-memory bytes (for small members such as manifest.json)."""
    data = bytes(data)
    return Entry(path=path, size=len(data), open=lambda: io.BytesIO(data), sha256=hashlib.sha256(data).hexdigest())


def _check_path(path: str) -> None:
    if (problem := entry_path_problem(path)) or path.endswith("/"):
        raise UnsafeEntryPath(f"unsafe entry path {path!r}: {problem or 'it names a directory'}")


def _validate(entries: list[Entry]) -> None:
    seen: set[str] = set()
    for entry in entries:
        _check_path(entry.path)
        if entry.path in seen:
            raise UnsafeEntryPath(f"duplicate entry path: {entry.path!r}")
        seen.add(entry.path)


class _HashingSink:
    """Write-through, unseekable output that hashes and counts every byte."""

    def __init__(self, out: BinaryIO, max_size: int | None):
        self._out, self._max_size, self._hash = out, max_size, hashlib.sha256()
        self._abandoned, self.size = False, 0

    def write(self, data) -> int:
        n = len(data)
        if self._abandoned:
            # After a failure zipfile still flushes its member and central directory on
            # cleanup; drop those bytes so nothing more lands in the caller's file.
            return n
        if self._max_size is not None and self.size + n > self._max_size:
            self._abandoned = True
            raise PackageTooLarge(self.size + n, self._max_size)
        self._out.write(data)
        self._hash.update(data)
        self.size += n
        return n

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        if not self._abandoned and hasattr(self._out, "flush"):
            self._out.flush()

    def abandon(self) -> None:
        self._abandoned = True

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

def _zipinfo(entry: Entry, compresslevel: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(entry.path, date_time=FIXED_DATE_TIME)
    info.create_system = 3
    info.external_attr = FILE_MODE << 16
    # zipfile uses file_size to decide up front whether the member needs zip64.
    info.file_size = entry.size
    if should_store(entry.path):
        info.compress_type = zipfile.ZIP_STORED
    else:
        info.compress_type = zipfile.ZIP_DEFLATED
        # ZipFile.open() ignores the archive-level level for a caller-supplied ZipInfo.
        info._compresslevel = compresslevel
    return info


def write_package(
    entries: Iterable[Entry],
    out: BinaryIO,
    *,
    should_stop: Callable[[], object] = lambda: None,
    max_size: int | None = None,
    compresslevel: int = 6,
    chunk_size: int = 1 << 20,
    on_entry: Callable[[Entry], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> PackageResult:
    """Stream entries, in the given order, into a deterministic ZIP on out and return its size and SHA-256.

    For progress reports, on_entry is called after each entry is written, and on_bytes with
    the size of each chunk of an entry's bytes as it is copied.
    """
    entries = list(entries)
    _validate(entries)
    sink = _HashingSink(out, max_size)

    def check_stop() -> None:
        reason = should_stop()
        if reason:
            raise PackagingStopped(reason)

    crc32 = {}
    with zipfile.ZipFile(sink, "w", allowZip64=True) as zf:
        try:
            for entry in entries:
                check_stop()
                info = _zipinfo(entry, compresslevel)
                with entry.open() as src, zf.open(info, "w") as dst:
                    try:
                        _copy_member(entry, src, dst, chunk_size, check_stop, on_bytes)
                    except BaseException:
                        # Abandon before the member's close() writes its trailer.
                        sink.abandon()
                        raise
                if entry.crc32 is not None and info.CRC != entry.crc32:
                    raise EntryChanged(f"entry {entry.path!r} changed: CRC-32 expected {entry.crc32:08x}, got {info.CRC:08x}")
                crc32[entry.path] = info.CRC
                if on_entry is not None:
                    on_entry(entry)
        except BaseException:
            sink.abandon()
            raise
    return PackageResult(size=sink.size, sha256=sink.hexdigest(), entries=len(entries), crc32=crc32)


def _copy_member(
    entry: Entry, src: BinaryIO, dst: BinaryIO, chunk_size: int, check_stop: Callable[[], None],
    on_bytes: Callable[[int], None] | None,
) -> None:
    digest = hashlib.sha256() if entry.sha256 is not None and entry.crc32 is None else None
    read = 0
    last_check = _clock()
    while True:
        chunk = src.read(chunk_size)
        if not chunk:
            break
        read += len(chunk)
        if read > entry.size:
            raise EntryChanged(f"entry {entry.path!r} changed: size expected {entry.size} bytes, read at least {read}")
        if digest is not None:
            digest.update(chunk)
        dst.write(chunk)
        if on_bytes is not None:
            on_bytes(len(chunk))
        if _clock() - last_check >= STOP_CHECK_INTERVAL:
            check_stop()
            last_check = _clock()
    if read != entry.size:
        raise EntryChanged(f"entry {entry.path!r} changed: size expected {entry.size} bytes, read {read}")
    if digest is not None and digest.hexdigest() != entry.sha256.lower():
        raise EntryChanged(f"entry {entry.path!r} changed: sha256 expected {entry.sha256}, got {digest.hexdigest()}")
