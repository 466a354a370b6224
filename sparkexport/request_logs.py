"""The outermost middleware: a request id for every request, one log line and the HTTP
metrics per request, and the probes answered before anything else runs.

The request id is the caller's `X-Request-ID` when it is a plain token of at most 128
characters, else a new one; either way it is echoed in the response. Probes (`/health`,
`/ready`, `/metrics`) skip the rest of the middleware: load balancers and Prometheus call
them by address, with a Host header ALLOWED_HOSTS would refuse, and they build no URL.
"""
import logging
import re
import time
import uuid

from django.utils.encoding import escape_uri_path

from sparkexport import metrics
from sparkexport.health import health, ready
from sparkexport.logs import log_context, log_context_bind

logger = logging.getLogger("sparkexport.requests")

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTED_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/=-]{0,127}")
PROBES = {"/health": ("health", health), "/ready": ("ready", ready), "/metrics": ("metrics", metrics.metrics_view)}
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
PATH_LOG_LIMIT = 300


def request_id_from(header: str | None) -> str:
    """The caller's request id if it is a plain token; otherwise a new one (never its text)."""
    if header and _ACCEPTED_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def _job_id(value) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


class RequestObservationMiddleware:
    """Request id, log context, probes, then one log line and the HTTP metrics."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        with log_context(request_id=request_id):
            probe = PROBES.get(request.path_info)
            if probe is not None:
                view, response = probe[0], probe[1](request)
            else:
                response = self.get_response(request)
                view = request.resolver_match.view_name if request.resolver_match else "unmatched"
            response[REQUEST_ID_HEADER] = request_id
            self._observe(request, response, view, time.perf_counter() - started, probe=probe is not None)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        """The tenant and job the URL names, for every line logged while the view runs."""
        fields = {}
        if "tenant" in view_kwargs:
            fields["tenant"] = view_kwargs["tenant"]
        if "job_id" in view_kwargs and (job_id := _job_id(view_kwargs["job_id"])):
            fields["job_id"] = job_id
        log_context_bind(**fields)

    def _observe(self, request, response, view: str, seconds: float, *, probe: bool) -> None:
        method = request.method if request.method in METHODS else "other"
        metrics.HTTP_REQUESTS.labels(view, method, str(response.status_code)).inc()
        metrics.HTTP_DURATION.labels(view).observe(seconds)
        path = escape_uri_path(request.path)[:PATH_LOG_LIMIT]  # never the query: links carry tokens
        duration_ms = round(seconds * 1000, 1)
        # Probes come every few seconds from every balancer: kept out of the INFO stream.
        logger.log(
            logging.DEBUG if probe else logging.INFO,
            "%s %s %s %.1f ms", method, path, response.status_code, duration_ms,
            extra={"event": "request", "method": method, "path": path, "view": view,
                   "status": response.status_code, "duration_ms": duration_ms},
        )
