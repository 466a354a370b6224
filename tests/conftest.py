import logging
import shutil
import sys
import tempfile
from pathlib import Path

import django_rq
from django.core.cache import cache
import pytest
from rest_framework.test import APIClient

from sparkexport import snapshots
from sparkexport.snapshots import tokens

from tests import log_secrets

# Before the test modules import the services, so that every secret they make is recorded.
log_secrets.collect_secrets()

from tests.factories import TenantFactory, make_api_key  # noqa: E402


# --- no secret in any log (tests/log_secrets.py) ------------------------------------------

LOG_CAPTURE = pytest.StashKey[logging.Handler]()
LOG_CAPTURE_DIR = pytest.StashKey[Path]()
PROCESSES_OUTPUT = pytest.StashKey[Path]()
WORKER_SECRET_REPORTS = pytest.StashKey[list]()


def pytest_configure(config):
    config.stash[WORKER_SECRET_REPORTS] = []
    config.stash[LOG_CAPTURE_DIR] = Path(tempfile.mkdtemp(prefix="sparkexport-test-logs-"))
    config.stash[LOG_CAPTURE] = log_secrets.capture_handler(config.stash[LOG_CAPTURE_DIR] / "all-records.jsonl")
    logging.getLogger().addHandler(config.stash[LOG_CAPTURE])


@pytest.fixture(autouse=True)
def _logs_captured(request):
    """Whatever a test did to the logging configuration, the capture goes on."""
    root = logging.getLogger()
    if request.config.stash[LOG_CAPTURE] not in root.handlers:
        root.addHandler(request.config.stash[LOG_CAPTURE])


@pytest.fixture(scope="session", autouse=True)
def _processes_output(request, tmp_path_factory):
    """Where the output of the processes the tests start lands (their `*.log` files)."""
    request.config.stash[PROCESSES_OUTPUT] = tmp_path_factory.getbasetemp()


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if a secret the tests made is in a log record or a process's output.

    Each process of a parallel run searches its own logs; the workers hand their findings to
    the controller (xdist's `workeroutput`), which reports them all and fails the run."""
    stash = session.config.stash
    if LOG_CAPTURE not in stash:
        return
    report = _secrets_in_logs(stash)
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["secrets_in_logs"] = report
        return
    reports = [report, *stash[WORKER_SECRET_REPORTS]]
    found = [line for each in reports for line in each["found"]]
    searched = (f"secrets in logs: {sum(each['secrets'] for each in reports)} secrets searched for in "
                f"{sum(each['files'] for each in reports)} files ({sum(each['mib'] for each in reports):.1f} MiB)")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter is not None else (lambda line: print(line, file=sys.stderr))
    if not found:
        write(f"\n{searched}: none found")
        return
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
    write(f"\n{searched}: {len(found)} found, the run fails")
    for line in found[:50]:
        write(line)
    for each in reports:
        if each["found"]:
            write(f"(all log records of a process of this run: {each['records']})")


def _secrets_in_logs(stash) -> dict:
    logging.getLogger().removeHandler(stash[LOG_CAPTURE])
    stash[LOG_CAPTURE].close()
    outputs = sorted(stash[PROCESSES_OUTPUT].rglob("*.log")) if PROCESSES_OUTPUT in stash else []
    files = [path for path in [stash[LOG_CAPTURE_DIR] / "all-records.jsonl", *outputs] if path.is_file()]
    report = {"secrets": len(log_secrets.SECRETS.kinds), "files": len(files), "records": str(stash[LOG_CAPTURE_DIR]),
              "mib": sum(path.stat().st_size for path in files) / 2**20,
              "found": log_secrets.leaks(log_secrets.SECRETS.kinds, files)}
    if not report["found"]:
        shutil.rmtree(stash[LOG_CAPTURE_DIR], ignore_errors=True)
    return report


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """A parallel worker ended (controller side): keep what its search of logs found."""
    report = getattr(node, "workeroutput", {}).get("secrets_in_logs")
    if report is not None:
        node.config.stash[WORKER_SECRET_REPORTS].append(report)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Each test stores files under its own folder (default storage follows MEDIA_ROOT)."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters start at zero and no status snapshot is kept, in every test."""
    cache.clear()
    snapshots.store.clear()
    tokens.read_breaker.close()
    tokens.write_breaker.close()


@pytest.fixture
def redis_queue():
    """The real `exports` queue on the test Redis database, emptied before and after."""
    queue = django_rq.get_queue("exports")
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()


@pytest.fixture
def tenant(db):
    return TenantFactory(slug="acme")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(slug="globex")


class SparkClient(APIClient):
    """An API client that sends a tenant's API key the way the cspark SDK does."""

    def __init__(self, tenant_slug: str, key: str):
        super().__init__()
        self.tenant_slug = tenant_slug
        self.credentials(HTTP_X_SYNTHETIC_KEY=key, HTTP_X_TENANT_NAME=tenant_slug)

    def api(self, path: str) -> str:
        return f"/{self.tenant_slug}/api/v4/{path}"


@pytest.fixture
def api(tenant):
    return SparkClient(tenant.slug, make_api_key(tenant))


@pytest.fixture
def other_api(other_tenant):
    return SparkClient(other_tenant.slug, make_api_key(other_tenant, name="globex-key"))


# --- no traceback in the server log for a 4xx-worthy input ---------------------------------

# django.request and django.security log what Django itself answers (500s, SuspiciousOperation);
# the apps log through their module names; the root catches the rest.
SERVER_LOGGERS = ("", "django.request", "django.security", "sparkexport", "exports", "tenants")


class _ServerErrorRecords(logging.Handler):
    """Every record a client's mistake must never produce: an error, a traceback, INTERNAL_ERROR."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.found: dict[int, logging.LogRecord] = {}

    def emit(self, record):
        if record.levelno >= logging.ERROR or record.exc_info or "INTERNAL_ERROR" in record.getMessage():
            self.found[id(record)] = record


@pytest.fixture
def no_server_errors():
    """Fails the test when the server logged an error or a traceback while it ran (docs/security.md,
    "Hostile input"): for tests whose every request is the client's mistake, answered 4xx."""
    handler = _ServerErrorRecords()
    loggers = [logging.getLogger(name) for name in SERVER_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    lines = [f"{r.name} {r.levelname}: {r.getMessage()[:300]}" for r in handler.found.values()]
    assert not lines, "the server logged errors for a 4xx-worthy input:\n" + "\n".join(lines)
