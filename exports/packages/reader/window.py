"""A member stored (not compressed) in a package, read in place as a seekable file (no Django).

A workbook is itself a ZIP, which its reader opens by seeking to its end and back: zipfile's own
member stream seeks by reading again from the start, so each seek would cost the whole member.
The writer stores workbooks, so their bytes lie in the package as they are, and a window onto
them seeks for free. The bytes are not checked here: only a package `read_package` accepted is
read so, and whatever is kept from it is stored through `open_member`, which checks them.
"""
from __future__ import annotations

import io
import os
from typing import BinaryIO

from exports.packages.reader.model import PackageFile


class StoredMember(io.RawIOBase):
    """The bytes of one stored member, as a read-only, seekable file."""

    def __init__(self, handle: BinaryIO, start: int, size: int):
        self._handle, self._start, self._size, self._position = handle, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = min(max(base + offset, 0), self._size)
        return self._position

    def readinto(self, buffer) -> int:
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        self._handle.seek(self._start + self._position)
        read = self._handle.readinto(memoryview(buffer)[:wanted])
        self._position += read
        return read

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


def open_stored_member(path: str | os.PathLike, member: PackageFile) -> BinaryIO | None:
    """A seekable file of `member`'s bytes if the package stores it uncompressed, else None."""
    if not member.stored or member.data_offset is None:
        return None
    return io.BufferedReader(StoredMember(open(path, "rb"), member.data_offset, member.size), buffer_size=1 << 16)
