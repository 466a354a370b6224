"""Digests computed on a thread of their own while the caller reads (no Django).

hashlib and zlib release the GIL on large buffers, so on two cores a digest computed so costs
the reading thread no time: each chunk is handed over as the next one is read. Chunks are taken
one at a time, in order; `wait()` returns once the last one handed over is in the digest.
"""
from __future__ import annotations

import zlib
from concurrent.futures import Executor, ThreadPoolExecutor


def digest_thread() -> ThreadPoolExecutor:
    """The thread BackgroundDigests share: one, so that each one's chunks stay in order."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="package-digest")


class Crc32:
    """zlib's CRC-32 with hashlib's `update`."""

    def __init__(self):
        self.value = 0

    def update(self, data) -> None:
        self.value = zlib.crc32(data, self.value)


class BackgroundDigest:
    """`digest` (anything with `update`) fed on `thread`, one chunk behind the caller."""

    def __init__(self, digest, thread: Executor):
        self.digest, self._thread, self._last = digest, thread, None

    def update(self, chunk) -> None:
        """Hand over `chunk` (bytes, or a view of bytes: it must not change afterwards)."""
        self.wait()
        self._last = self._thread.submit(self.digest.update, chunk)

    def wait(self) -> None:
        if self._last is not None:
            last, self._last = self._last, None
            last.result()
