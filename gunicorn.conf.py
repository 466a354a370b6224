"""gunicorn's settings for sparkexport: gunicorn reads ./gunicorn.conf.py by default, so
every `gunicorn sparkexport.wsgi` started from the repository root gets these. Command-line
options (--bind, --workers, ...) still apply on top.

Metrics (docs/observability.md): with several workers, `/metrics` must add up every worker's
counters, which prometheus-client does through files in PROMETHEUS_MULTIPROC_DIR. The
variable has to be in the environment before a worker imports the client, so it is set here,
in the master, before the workers fork: to the operator's directory (shared with the host's
rqworkers) or else to a private temporary one, removed at exit. The directory is not emptied
at start: the host's workers may be writing to it, and their counters only ever grow.
Empty it when every process of the host is stopped (a deploy, a boot on tmpfs).

Logs: with LOG_FORMAT=json gunicorn's own lines (booting, worker timeouts) are JSON too, so a
log shipper reads one format. No access log: the request lines of sparkexport/request_logs.py
replace it, and leave out the query string, where a download link carries its token.
"""
import os as _os
import shutil as _shutil
import tempfile as _tempfile

from gunicorn.glogging import Logger as _GunicornLogger

_OWNED_DIRECTORY_MARK = "SPARKEXPORT_METRICS_DIR_OWNED"  # survives a reload (HUP) of this file

if not _os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _os.environ["PROMETHEUS_MULTIPROC_DIR"] = _tempfile.mkdtemp(prefix="sparkexport-metrics-")
    _os.environ[_OWNED_DIRECTORY_MARK] = _os.environ["PROMETHEUS_MULTIPROC_DIR"]
_os.makedirs(_os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


class _JsonLogger(_GunicornLogger):
    """gunicorn's logger, its lines formatted by sparkexport's JSON formatter."""

    def setup(self, cfg):
        super().setup(cfg)
        from sparkexport.logs import JsonFormatter  # once the working directory is on sys.path

        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())


if _os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    logger_class = _JsonLogger


def child_exit(server, worker):
    """A worker that exits takes its live gauges with it (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    owned = _os.environ.get(_OWNED_DIRECTORY_MARK)
    if owned and owned == _os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _shutil.rmtree(owned, ignore_errors=True)
