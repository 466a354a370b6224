"""Prometheus metrics: what every process counts, and `/metrics`.

Under gunicorn (and for workers on the same host) every process writes its counters to files
in PROMETHEUS_MULTIPROC_DIR and `/metrics` adds them up (prometheus-client's multiprocess
mode; gunicorn.conf.py sets the directory up). Without it, as under runserver or in tests,
the process's own registry is served. Gauges that describe the installation rather than a
process (jobs in progress, queue depth, live workers) are read when scraped, by the
collectors settings.METRICS_COLLECTORS names, so they are never stale and never summed over
processes. No label holds a tenant or a job id: their number has no bound.
"""
import functools
import hmac
import os

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import HttpResponse
from django.utils.module_loading import import_string
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, disable_created_metrics, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
_process_name: str | None = None


def _process_identifier():
    return _process_name or os.getpid()


if MULTIPROCESS:
    # A missing directory would fail every request at its first count: fail at start instead.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    # Each process writes files named after this identifier: a work horse takes its worker's
    # (sparkexport/worker.py), so a worker leaves a fixed few files behind, not a few per job.
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_identifier)
# `*_created` series would be read as jobs of status "created"; multiprocess mode has none.
disable_created_metrics()

JOBS = Counter("sparkexport_jobs", "Jobs that reached a status (created, in_progress, or a terminal one).",
               ["kind", "status"])
JOB_DURATION = Histogram(
    "sparkexport_job_duration_seconds", "From creation to a terminal status, for jobs that were queued.",
    ["kind", "status"], buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
PACKAGE_SIZE = Histogram(
    "sparkexport_package_size_bytes", "Size of the package of each closed job: written by an export, read by an import.",
    ["kind"], buckets=tuple(1024 * 4**power for power in range(12)),
)
HTTP_REQUESTS = Counter("sparkexport_http_requests", "HTTP requests answered, by view, method and status.",
                        ["view", "method", "status"])
HTTP_DURATION = Histogram(
    "sparkexport_http_request_duration_seconds", "Time to answer an HTTP request (a streamed body not included).",
    ["view"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AUTH_FAILURES = Counter("sparkexport_auth_failures", "Refused credentials, by scheme.", ["scheme"])
WEBHOOK_ATTEMPTS = Counter(
    "sparkexport_webhook_attempts", "Webhook delivery attempts, by event and outcome (delivered, http_error, "
    "timeout, connection_error, refused).", ["event", "outcome"],
)
SNAPSHOT_LOOKUPS = Counter("sparkexport_snapshot_lookups", "Status snapshot lookups, by kind and hit or miss.",
                           ["kind", "result"])


def process_name_set(name: str) -> None:
    """Write this process's metrics under `name` instead of its pid. Only for a process that
    never runs beside another of the same name (a worker's work horses run one at a time)."""
    global _process_name
    _process_name = name


def auth_failure_count(scheme: str) -> None:
    AUTH_FAILURES.labels(scheme).inc()


@functools.cache
def _snapshot_counter(kind: str, result: str):
    return SNAPSHOT_LOOKUPS.labels(kind, result)


def snapshot_lookup_count(key, hit: bool) -> None:
    """One lookup in a snapshot store, labelled with the key's kind (its first item)."""
    kind = key[0] if isinstance(key, tuple) and key and isinstance(key[0], str) else "other"
    _snapshot_counter(kind, "hit" if hit else "miss").inc()


def _admin_login_failed(sender, credentials=None, request=None, **kwargs):
    auth_failure_count("admin_password")


user_login_failed.connect(_admin_login_failed, dispatch_uid="sparkexport.metrics.admin_login_failed")


# --- serving them --------------------------------------------------------------------------


class _Scrape:
    """What one scrape shows: the counters of this process, or of every process sharing the
    directory, then the installation's gauges read now."""

    def __init__(self, *sources):
        self.sources = sources

    def collect(self):
        for source in self.sources:
            yield from source.collect()


def process_registry():
    """The counters and histograms: every process's of this host in multiprocess mode."""
    if not MULTIPROCESS:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


@functools.cache
def _scrape_collectors() -> tuple:
    return tuple(import_string(path)() for path in settings.METRICS_COLLECTORS)


def exposition(accept: str) -> tuple[bytes, str]:
    """The body and content type of a scrape, in the format the scraper accepts."""
    encoder, content_type = choose_encoder(accept)
    return encoder(_Scrape(process_registry(), *_scrape_collectors())), content_type


def metrics_token_accepted(authorization: str) -> bool:
    """Open without METRICS_TOKEN; with it, only `Authorization: Bearer <METRICS_TOKEN>`."""
    expected = settings.METRICS_TOKEN
    if not expected:
        return True
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


def metrics_view(request):
    """GET /metrics, in Prometheus' text format (or OpenMetrics when asked for)."""
    if not metrics_token_accepted(request.META.get("HTTP_AUTHORIZATION", "")):
        auth_failure_count("metrics_token")
        return HttpResponse(
            "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.\n", status=401,
            content_type="text/plain", headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body, content_type = exposition(request.META.get("HTTP_ACCEPT", ""))
    return HttpResponse(body, content_type=content_type)
