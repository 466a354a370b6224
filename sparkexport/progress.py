"""A small text progress bar for long management commands (written to stderr)."""
import time

from django.core.management.base import OutputWrapper


class ProgressBar:
    """`[#####.....] 12/40 label`, redrawn at most every `interval` seconds and at the end."""

    def __init__(self, stream, total: int, label: str = "", width: int = 30, interval: float = 0.1):
        self.stream = stream
        self.total = max(total, 0)
        self.label = label
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
        self._write(f"\r[{bar}] {self.done}/{self.total} {self.label}{end}")

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
