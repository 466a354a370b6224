"""Parallel runs (pytest-xdist, `make test`'s `-n`): what each worker needs of its own.

pytest-django gives each worker a database of its own (`test_sparkexport_gw0`, ...). Redis
has no such thing, and the tests empty their database, so worker N uses the database N below
the one REDIS_URL names: 15, 14, ... It must be decided before Django reads its settings,
which pytest-django does before any conftest loads: hence a plugin (`-p tests.parallel`).
"""
import os
from urllib.parse import urlsplit, urlunsplit

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1", ...; unset without xdist
    if worker and os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = redis_url_of_worker(os.environ["REDIS_URL"], int(worker.removeprefix("gw")))
    return (yield)


def redis_url_of_worker(url: str, index: int) -> str:
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) - index
    if database < 0:
        raise pytest.UsageError(f"{index + 1} workers need Redis databases down from {url}: use fewer workers (-n)")
    return urlunsplit(parts._replace(path=f"/{database}"))
