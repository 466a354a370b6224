"""Live progress of a running job: entries and bytes done, of totals known when it starts.

A worker reports as it goes (`ProgressReporter`), a status poll reads (`live_progress`). The
figures are published a few times a second at most, whatever the package's size, to Redis
under a key per job that expires on its own (in the process itself when jobs run in-process,
as `make run` does). They are not the job's truth: a job records its final figures in its row
when it ends (exports/lifecycle.py), and while it runs a poll shows the latest published ones.
A Redis that does not answer costs progress only: never a job, never a poll.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import redis
from django.conf import settings

from sparkexport.redis_client import redis_client

logger = logging.getLogger(__name__)

KEY_PREFIX = "sparkexport:progress:"
PUBLISH_INTERVAL = 0.25  # seconds between two publications of one job's figures
TTL_SECONDS = 24 * 3600  # past any job's timeout: a worker killed mid-job leaves nothing for long
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass
class Progress:
    entries_done: int = 0
    entries_total: int | None = None
    bytes_done: int = 0
    bytes_total: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def finished(self) -> "Progress":
        return Progress(self.entries_total or 0, self.entries_total or 0, self.bytes_total or 0, self.bytes_total or 0)


_in_process: dict[str, dict] = {}  # job id -> figures, when jobs run in this process


def _redis() -> redis.Redis:
    return redis_client(REDIS_TIMEOUT_SECONDS)


def _publish(job_id: str, figures: dict) -> None:
    if settings.EMBEDDED_QUEUE:
        _in_process[job_id] = figures
        return
    try:
        _redis().set(KEY_PREFIX + job_id, json.dumps(figures), ex=TTL_SECONDS)
    except redis.RedisError as exc:
        logger.warning("progress of job %s not published: %s", job_id, exc)


def live_progress(job_id) -> dict | None:
    """The latest figures a running job published, or None (none yet, or Redis not answering)."""
    job_id = str(job_id)
    if settings.EMBEDDED_QUEUE:
        return _in_process.get(job_id)
    try:
        value = _redis().get(KEY_PREFIX + job_id)
    except redis.RedisError:
        return None
    return json.loads(value) if value else None


def live_progress_of(job_ids) -> dict[str, dict]:
    """`live_progress` of many jobs in one round trip, by job id (those with figures only)."""
    ids = [str(job_id) for job_id in job_ids]
    if not ids:
        return {}
    if settings.EMBEDDED_QUEUE:
        return {job_id: _in_process[job_id] for job_id in ids if job_id in _in_process}
    try:
        values = _redis().mget([KEY_PREFIX + job_id for job_id in ids])
    except redis.RedisError:
        return {}
    return {job_id: json.loads(value) for job_id, value in zip(ids, values) if value}


NO_PROGRESS = {"entries_done": 0, "entries_total": None, "bytes_done": 0, "bytes_total": None}


def progress_figures(job_id, *, active: bool, recorded: dict | None) -> dict:
    """A job's figures as status documents show them: while it is active, those its worker last
    published; once it ended, those its row recorded (totals, when closed)."""
    if active and (live := live_progress(job_id)):
        return live
    return recorded or NO_PROGRESS


def forget_progress(job_id) -> None:
    """Drop a finished job's live figures (its row holds them now)."""
    job_id = str(job_id)
    if settings.EMBEDDED_QUEUE:
        _in_process.pop(job_id, None)
        return
    try:
        _redis().delete(KEY_PREFIX + job_id)
    except redis.RedisError:
        pass  # they expire on their own


class ProgressReporter:
    """A running job's figures: `advance` as work is done (from any thread); published at most
    every `interval` seconds, and at once when the totals are first known."""

    def __init__(self, job_id, *, entries_total: int, bytes_total: int, interval: float = PUBLISH_INTERVAL,
                 listener: Callable[[Progress], None] | None = None):
        self.job_id = str(job_id)
        self.progress = Progress(0, entries_total, 0, bytes_total)
        self.interval, self.listener = interval, listener
        self.publications = 0
        self._published_at = 0.0
        self._lock = threading.Lock()
        self._publish()

    def advance(self, *, entries: int = 0, bytes_: int = 0) -> None:
        with self._lock:
            self.progress.entries_done += entries
            self.progress.bytes_done += bytes_
            if self.listener is not None:
                self.listener(self.progress)
            if time.monotonic() - self._published_at >= self.interval:
                self._publish()

    def _publish(self) -> None:
        _publish(self.job_id, self.progress.as_dict())
        self.publications += 1
        self._published_at = time.monotonic()

    def finished(self) -> dict:
        """The figures a closed job records: every entry and byte done."""
        return self.progress.finished().as_dict()
