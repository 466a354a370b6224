"""The RQ worker class of every `rqworker` (settings.RQ["WORKER_CLASS"]).

It adds to RQ's worker what observing it needs:

- RQ's own lines about a job (started, OK, failed, the horse killed) carry the job id,
  tenant and correlation id it was queued with (sparkexport.queue.enqueue's `log_fields`);
- every work horse of a worker writes its metrics under one name (the worker's), so a worker
  leaves a fixed number of files in PROMETHEUS_MULTIPROC_DIR however many jobs it runs (a
  file per horse would make every scrape slower, forever); its horses run one at a time;
- after losing Redis it retries at least every 5 s, not RQ's 60 s;
- with METRICS_PORT, a worker on a host without a web server serves its own /metrics
  (METRICS_TOKEN applies), adding up its horses' files. Workers beside gunicorn need no
  port: they share its PROMETHEUS_MULTIPROC_DIR and the web's /metrics counts their jobs;
- it records itself under settings.HOST_NAME and keeps WORKER_HEARTBEAT_SECONDS between
  heartbeats while it runs a job, declared in its key so a reaper on any host can tell
  from Redis alone that it died (heartbeat_silence).
"""
import logging
import os
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
from rq import Worker

from sparkexport import metrics
from sparkexport.logs import log_context

logger = logging.getLogger(__name__)


# A field of our own in the worker's hash in Redis: the heartbeat interval it keeps, so the
# reaper on another host (with other settings) knows how many heartbeats it has missed.
HEARTBEAT_FIELD = "sparkexport_heartbeat_seconds"
# RQ renews a worker's key with a TTL of its interval plus this while it runs a job.
RQ_HEARTBEAT_MARGIN = 60


class ObservedWorker(Worker):
    """RQ's forking worker, observed, under this host's name and heartbeat interval."""

    # RQ doubles its wait between attempts to reach a lost Redis up to 60 s, so after a
    # 30 s outage a worker could sleep for another 32 s with jobs waiting. A retry every 5 s
    # at most costs nothing and puts a worker back to work within 5 s of Redis returning.
    max_connection_wait_time = 5.0

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("job_monitoring_interval", settings.WORKER_HEARTBEAT_SECONDS)
        super().__init__(*args, **kwargs)
        if self.hostname is not None:  # None for a worker restored from Redis
            self.hostname = settings.HOST_NAME

    def register_birth(self):
        super().register_birth()
        self.connection.hset(self.key, HEARTBEAT_FIELD, self.job_monitoring_interval)

    def work(self, *args, **kwargs):
        if settings.METRICS_PORT:
            metrics_server_start(settings.METRICS_ADDR, settings.METRICS_PORT)
        return super().work(*args, **kwargs)

    def execute_job(self, job, queue):
        # The horse is forked inside, so it starts with this context too. RQ jobs that are not
        # sparkexport jobs (the reaper's cron) name none.
        with log_context(**job.meta.get("log_fields", {})):
            return super().execute_job(job, queue)

    def main_work_horse(self, job, queue):
        metrics.process_name_set(f"rqhorse-{os.getppid()}")
        return super().main_work_horse(job, queue)


def heartbeat_silence(connection, worker_key: str) -> tuple[float, int] | None:
    """How long (s) a worker running a job has been silent, and its heartbeat interval; None
    if it declared no interval or its key has no TTL running down from a job's heartbeat.

    Measured on the key's TTL, so by Redis's clock alone: hosts' clocks may differ.
    """
    with connection.pipeline() as pipeline:
        pipeline.hget(worker_key, HEARTBEAT_FIELD)
        pipeline.ttl(worker_key)
        interval, ttl = pipeline.execute()
    if interval is None or ttl < 0:
        return None
    interval = int(interval)
    return max(0.0, interval + RQ_HEARTBEAT_MARGIN - ttl), interval


def metrics_server_start(addr: str, port: int) -> None:
    """Serve this worker's /metrics from a thread, on addr:port."""
    if not metrics.MULTIPROCESS:
        raise ImproperlyConfigured(
            "METRICS_PORT needs PROMETHEUS_MULTIPROC_DIR: a worker's jobs run in forked work horses, "
            "whose metrics reach the worker only through files there. Set it to an empty directory "
            "of this host (e.g. /run/sparkexport/metrics) for this worker and its host's other processes."
        )
    server = make_server(addr, port, _token_checked(make_wsgi_app(metrics.process_registry())),
                         ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    logger.info("worker metrics served on http://%s:%d/metrics", addr, port)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass  # a line per scrape, every few seconds, would drown the job lines


def _token_checked(app):
    def checked(environ, start_response):
        if not metrics.metrics_token_accepted(environ.get("HTTP_AUTHORIZATION", "")):
            metrics.auth_failure_count("metrics_token")
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')])
            return [b"Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.\n"]
        return app(environ, start_response)

    return checked
