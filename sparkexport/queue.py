"""Putting background jobs on a queue: RQ on Redis, or in-process threads in development.

The embedded mode exists so `make run` needs no Redis; production settings refuse it.
"""
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import django_rq
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone
from django.utils.module_loading import import_string
from redis.exceptions import RedisError
from rq import Callback

from sparkexport.errors import ServiceUnavailable
from sparkexport.fair_queue import fair_place

logger = logging.getLogger(__name__)

_embedded_pool: ThreadPoolExecutor | None = None


class QueueUnavailable(Exception):
    """Redis could not take the job."""


def enqueue(queue_name: str, func: Callable[[str], None], *, job_id: str, timeout: int,
            on_failure: Callable | None = None, log_fields: dict | None = None, owner: str | None = None) -> None:
    """Queue `func(job_id)` as RQ job `job_id` (a module-level function: RQ stores its path).

    `on_failure` runs when RQ itself fails the job: its work horse was killed, or its worker
    died and RQ's sweep found it abandoned. The worker's lines about the job carry
    `log_fields` (sparkexport/worker.py). With `owner` (a tenant) and QUEUE_TENANT_FAIR, the
    job waits in tenant-fair order (sparkexport/fair_queue.py), else in arrival order.
    """
    for callable_ in (func, on_failure):
        if callable_ is not None and "<" in callable_.__qualname__:
            raise ValueError(f"{callable_.__qualname__} is not a module-level function: RQ could not import it")
    if settings.EMBEDDED_QUEUE:
        _embedded_executor().submit(_run_embedded, func, job_id)
        return
    try:
        rq_queue = django_rq.get_queue(queue_name)
        rq_queue.enqueue(
            func,
            job_id,
            job_id=job_id,
            job_timeout=timeout,
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
            on_failure=Callback(on_failure) if on_failure else None,
            meta={"log_fields": log_fields or {}},
        )
        if owner is not None and settings.QUEUE_TENANT_FAIR:
            fair_place(rq_queue.connection, rq_queue.key, job_id, owner)
    except RedisError as exc:
        logger.error("queue %s unreachable for job %s: %s", queue_name, job_id, exc)
        raise QueueUnavailable(str(exc)) from exc


def enqueue_call(queue_name: str, func_path: str, *args, timeout: int, at=None) -> None:
    """Queue `func_path(*args)` (a dotted path RQ imports), now or at datetime `at` (RQ's
    scheduler, run by `rqworker --with-scheduler`, moves it onto the queue then). Raises
    QueueUnavailable when Redis refuses; in embedded mode it runs in a thread."""
    if settings.EMBEDDED_QUEUE:
        delay = max(0.0, (at - timezone.now()).total_seconds()) if at else 0.0
        timer = threading.Timer(delay, lambda: _embedded_executor().submit(_run_embedded, import_string(func_path), *args))
        timer.daemon = True
        timer.start()
        return
    queue = django_rq.get_queue(queue_name)
    options = {"job_timeout": timeout, "result_ttl": 600, "failure_ttl": 7 * 24 * 3600}
    try:
        if at is None:
            queue.enqueue(func_path, *args, **options)
        else:
            queue.enqueue_at(at, func_path, *args, **options)
    except RedisError as exc:
        logger.error("queue %s unreachable for %s: %s", queue_name, func_path, exc)
        raise QueueUnavailable(str(exc)) from exc


def queue_depth(queue_name: str) -> int:
    """How many jobs wait on a queue; raises RedisError when Redis does not answer."""
    return django_rq.get_queue(queue_name).count


def unavailable_error() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The job queue is unreachable, so no job was created. Retry in a few seconds; "
        "if it persists, tell the operator that Redis is down.",
        headers={"Retry-After": "5"},
    )


def _embedded_executor() -> ThreadPoolExecutor:
    global _embedded_pool
    if _embedded_pool is None:
        logger.warning("running job in-process (no REDIS_URL): development mode only")
        _embedded_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-job")
    return _embedded_pool


def _run_embedded(func, *args) -> None:
    close_old_connections()
    try:
        func(*args)
    except Exception:
        logger.exception("embedded job %s%s failed", func.__name__, args)
    finally:
        connection.close()
