"""A small text progress bar for long management commands (written to stderr)."""
import time

from django.core.management.base import OutputWrapper


class ProgressBar:
    """`[#####.....] 12/40 label`, redrawn at most every `interval` seconds and at the end."""

    def __init__(self, stream, total: int, label: str = "", width: int = 30, interval: float = 0.1,
                 fmt=str):
        self.stream = stream
        self.total = max(total, 0)
        self.label = label
        self.fmt = fmt
        self.width = width
        self.interval = interval
        self.done = 0
        self._drawn_at = 0.0

    def advance(self, count: int = 1) -> None:
        self.done = min(self.total, self.done + count)
        now = time.monotonic()
        if self.done == self.total or now - self._drawn_at >= self.interval:
            self._draw()
            self._drawn_at = now

    def _draw(self) -> None:
        filled = self.width * self.done // self.total if self.total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        end = "\n" if self.done >= self.total else ""
        self._write(f"\r[{bar}] {self.fmt(self.done)}/{self.fmt(self.total)} {self.label}{end}")

    def _write(self, text: str) -> None:
        if isinstance(self.stream, OutputWrapper):
            self.stream.write(text, ending="")
        else:
            self.stream.write(text)
        self.stream.flush()

    def __enter__(self):
        if self.total == 0:
            self._draw()
        return self

    def __exit__(self, *exc_info):
        if self.done < self.total:
            self._write("\n")


def megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


class JobProgressBar(ProgressBar):
    """The bar of a running job's figures (sparkexport/job_progress.py): its bytes, with its
    entries beside them. Called with each new figure; complete when both are."""

    def __init__(self, stream, label: str):
        super().__init__(stream, 0, label, fmt=megabytes)
        self.entries = (0, None)
        self._finished = False

    def __call__(self, progress) -> None:
        if self._finished:
            return
        self.total = progress.bytes_total or 0
        self.entries = (progress.entries_done, progress.entries_total)
        self.done = progress.bytes_done
        now = time.monotonic()
        if self.complete or now - self._drawn_at >= self.interval:
            self._draw()
            self._drawn_at = now
            self._finished = self.complete

    @property
    def complete(self) -> bool:
        done, total = self.entries
        return total is not None and done >= total and self.done >= self.total

    def _draw(self) -> None:
        filled = self.width * self.done // self.total if self.total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        done, total = self.entries
        end = "\n" if self.complete else ""
        self._write(f"\r[{bar}] {self.fmt(self.done)}/{self.fmt(self.total)} ({done}/{total} entries) {self.label}{end}")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._drawn_at and not self._finished:
            self._write("\n")
