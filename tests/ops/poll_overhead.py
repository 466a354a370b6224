"""What the request middleware (request id, log line, metrics) costs a status poll: 2,000
in-process GETs of `export/{id}/status` answered from snapshots, with and without it.

Not part of the suite (no `test_` prefix); run it on its own:

    make test PYTEST_ARGS="tests/ops/poll_overhead.py -s"

Rounds alternate between the two settings, in turn first, and count this process's CPU time,
so that a busy machine slows both alike; logs go, formatted as JSON, to a single handler
writing to /dev/null, as a production process writes one stream.
"""
import gc
import logging
import os
import statistics
import time
from contextlib import contextmanager

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sparkexport.logs import JsonFormatter
from tests.conftest import SparkClient
from tests.exports.api_helpers import close_job, make_job

pytestmark = pytest.mark.django_db(transaction=True)

POLLS = 2000
ROUNDS = 9
MIDDLEWARE = "sparkexport.request_logs.RequestObservationMiddleware"


@contextmanager
def one_log_stream():
    """Only a JSON stream to /dev/null: not pytest's capture, nor the run's secrets check."""
    root = logging.getLogger()
    saved = root.handlers[:]
    with open(os.devnull, "w") as sink:
        handler = logging.StreamHandler(sink)
        handler.setFormatter(JsonFormatter())
        root.handlers = [handler]
        try:
            yield
        finally:
            root.handlers = saved


def polls_per_second(settings, middleware: list[str], key: str, url: str) -> float:
    settings.MIDDLEWARE = middleware
    client = SparkClient("acme", key)
    for _ in range(3):  # builds the handler, starts the tokens, keeps the snapshots
        assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    assert len(queries) == 0, "the polls should be answered from snapshots"
    started = time.process_time()  # this process's CPU: other processes' load does not count
    for _ in range(POLLS):
        client.get(url)
    return POLLS / (time.process_time() - started)


def test_poll_overhead(settings, tenant):
    from tests.factories import make_api_key

    key = make_api_key(tenant)
    job = make_job(tenant)
    close_job(job.pk)
    url = f"/acme/api/v4/export/{job.pk}/status"
    with_it = list(django_settings.MIDDLEWARE)
    without = [name for name in with_it if name != MIDDLEWARE]
    rates = {"with": [], "without": []}
    gc.collect()
    gc.freeze()  # the test run's own objects are not what a server process collects
    with one_log_stream():
        for round_ in range(ROUNDS):
            order = ("without", "with") if round_ % 2 else ("with", "without")
            for arm in order:
                rates[arm].append(polls_per_second(settings, with_it if arm == "with" else without, key, url))
    bare, observed = statistics.median(rates["without"]), statistics.median(rates["with"])
    print(f"\n{POLLS} polls x {ROUNDS} rounds, median: without {bare:.0f}/s ({1e6 / bare:.0f} µs), "
          f"with {observed:.0f}/s ({1e6 / observed:.0f} µs); time ratio {bare / observed:.3f}, "
          f"{1e6 / observed - 1e6 / bare:.0f} µs a poll")
