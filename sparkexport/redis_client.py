"""One Redis client per URL and timeout, for the processes' own small reads and writes (the
job queues have django-rq's): short timeouts, so a Redis that does not answer costs little."""
import os
import threading

import redis
from django.conf import settings

_clients: dict[tuple[str, float], redis.Redis] = {}
_lock = threading.Lock()


def redis_client(timeout: float) -> redis.Redis:
    """The client of settings.REDIS_URL whose connects and commands give up after `timeout` s."""
    key = (settings.REDIS_URL, timeout)
    with _lock:
        if key not in _clients:
            _clients[key] = redis.Redis.from_url(key[0], socket_timeout=timeout, socket_connect_timeout=timeout)
        return _clients[key]


def _after_fork_in_child() -> None:
    """A forked child (gunicorn worker, RQ work horse) gets clients and a lock of its own: the
    parent's connections are not its to use, and another thread may have held the lock."""
    global _lock
    _lock = threading.Lock()
    _clients.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
