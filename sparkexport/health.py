"""`/health` (the process answers) and `/ready` (it can serve: database, Redis and storage
reachable), for load balancers and orchestrators.

`/health` touches nothing, so a database outage never makes an orchestrator restart healthy
processes; `/ready` takes a process out of rotation while a dependency is down. The JSON
names each dependency; why one failed goes to the log, not to an unauthenticated caller.
"""
import functools
import logging
import os
import tempfile

import redis
from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.db import connection
from django.http import JsonResponse

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 2
CHECKED_STORAGES = ("default", "packages")
UP, DOWN, NOT_USED = "up", "down", "not used"


def health(request):
    """GET /health: 200 while the process can answer at all."""
    return JsonResponse({"status": "UP"})


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return UP


@functools.cache
def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS)


def _redis() -> str:
    if not settings.REDIS_URL:
        return NOT_USED  # development mode: jobs run in-process
    _redis_client(settings.REDIS_URL).ping()
    return UP


def _storage() -> str:
    """Disk: a file can be created where files go. S3: the bucket answers a HEAD."""
    for alias in CHECKED_STORAGES:
        storage = storages[alias]
        if isinstance(storage, FileSystemStorage):
            with tempfile.NamedTemporaryFile(dir=_created(storage.location), prefix=".ready-"):
                pass
        else:
            storage.exists(".ready-probe")
    return UP


def _created(location: str) -> str:
    os.makedirs(location, exist_ok=True)
    return location


CHECKS = {"database": _database, "redis": _redis, "storage": _storage}


def _outcome(name: str, check) -> str:
    try:
        return check()
    except Exception as exc:  # whatever the driver raises: OSError, RedisError, DatabaseError, botocore's
        logger.warning("not ready: %s unreachable (%s: %s)", name, type(exc).__name__, exc)
        return DOWN


def ready(request):
    """GET /ready: 200 when every dependency answers, else 503 naming those that do not."""
    checks = {name: _outcome(name, check) for name, check in CHECKS.items()}
    failing = [name for name, outcome in checks.items() if outcome == DOWN]
    body = {"status": "DOWN" if failing else "UP", "checks": checks, "failing": failing}
    return JsonResponse(body, status=503 if failing else 200)
