"""Log lines: the request id, and the tenant, job and correlation id on every line of a request
and of a job, in JSON and in text."""
import logging
import re

import pytest
from django.test import Client
from rq import SimpleWorker

from sparkexport.logs import TextFormatter, log_context
from sparkexport.request_logs import request_id_from
from tests.factories import ServiceVersionFactory

pytestmark = pytest.mark.django_db

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def catalog(tenant):
    ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing", service__name="quote")


def post_export(api, capture, **headers):
    with capture(execute=True):
        response = api.post(api.api("export"), {"inputs": {"folders": ["pricing"]}, "correlation_id": "order-42"},
                            format="json", **headers)
    assert response.status_code == 200, response.json()
    return response


def request_line(json_lines, request_id) -> dict:
    [line] = [line for line in json_lines.of("sparkexport.requests") if line["request_id"] == request_id]
    return line


@pytest.mark.django_db(transaction=True)  # the job's line is logged at commit, within the request
def test_a_post_logs_its_request_id_tenant_job_and_correlation_id(api, tenant, catalog, redis_queue, json_lines,
                                                                  django_capture_on_commit_callbacks):
    response = post_export(api, django_capture_on_commit_callbacks, HTTP_X_REQUEST_ID="req-7f3a.1")
    assert response["X-Request-ID"] == "req-7f3a.1"
    job_id = response.json()["id"]
    line = request_line(json_lines, "req-7f3a.1")
    assert line | {"time": None, "duration_ms": None} == {
        "time": None, "level": "INFO", "logger": "sparkexport.requests",
        "message": f"POST /{tenant.slug}/api/v4/export 200 {line['duration_ms']:.1f} ms",
        "request_id": "req-7f3a.1", "tenant": tenant.slug, "job_id": job_id, "correlation_id": "order-42",
        "event": "request", "method": "POST", "path": f"/{tenant.slug}/api/v4/export", "view": "export-create",
        "status": 200, "duration_ms": None,
    }
    [created] = [line for line in json_lines.of("sparkexport.jobs") if line["job_id"] == job_id]
    assert created["request_id"] == "req-7f3a.1"
    assert (created["tenant"], created["correlation_id"], created["kind"], created["job_status"]) == (tenant.slug, "order-42", "export", "created")


def test_a_status_poll_logs_the_job_of_its_url(api, tenant, catalog, redis_queue, json_lines, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks).json()["id"]
    response = api.get(api.api(f"export/{job_id}/status"))
    line = request_line(json_lines, response["X-Request-ID"])
    assert (line["tenant"], line["job_id"], line["view"], line["status"]) == (tenant.slug, job_id, "export-status", 200)


def test_without_a_request_id_one_is_made_and_echoed(api, json_lines):
    first, second = api.get(api.api("export/status")), api.get(api.api("export/status"))
    assert GENERATED_ID.fullmatch(first["X-Request-ID"]) and GENERATED_ID.fullmatch(second["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert request_line(json_lines, first["X-Request-ID"])["status"] == 200


@pytest.mark.parametrize("odd", [
    "x" * 129, "two words", "line\nbreak", "<script>", "ünïcode", "-leading-dash", "a;b", "",
])
def test_an_odd_request_id_is_replaced_never_echoed(api, json_lines, odd):
    response = api.get(api.api("export/status"), HTTP_X_REQUEST_ID=odd)
    assert GENERATED_ID.fullmatch(response["X-Request-ID"])
    assert request_line(json_lines, response["X-Request-ID"])["status"] == 200
    assert not any(odd and odd in str(line) for line in json_lines.lines)


def test_accepted_request_ids():
    for good in ("0af7651916cd43dd8448eb211c80319c", "Root=1-67891233-abcdef012345678912345678", "a" * 128, "req:1/2+3="):
        assert request_id_from(good) == good


def test_the_query_string_is_never_logged(api, json_lines):
    response = api.get(api.api("export/5f0c/file/package.zip") + "?token=key:1:secret-signature")
    line = request_line(json_lines, response["X-Request-ID"])
    assert "secret-signature" not in str(json_lines.lines)
    assert line["path"] == f"/{api.tenant_slug}/api/v4/export/5f0c/file/package.zip"


def test_the_probes_log_at_debug_and_skip_the_host_check(json_lines, caplog):
    with caplog.at_level(logging.DEBUG, logger="sparkexport.requests"):
        response = Client().get("/health", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200 and response.json() == {"status": "UP"}
    assert Client().get("/admin/", HTTP_HOST="10.1.2.3:8000").status_code == 400
    [line] = [line for line in json_lines.of("sparkexport.requests") if line["view"] == "health"]
    assert line["level"] == "DEBUG"


def test_job_lines_in_the_worker_carry_the_job_and_correlation_id(api, tenant, catalog, redis_queue, json_lines,
                                                                  django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks).json()["id"]
    json_lines.lines.clear()
    with django_capture_on_commit_callbacks(execute=True):
        SimpleWorker([redis_queue], connection=redis_queue.connection).work(burst=True)
    events = [line for line in json_lines.of("sparkexport.jobs") if line["job_id"] == job_id]
    assert [line["job_status"] for line in events] == ["in_progress", "closed"]
    for line in events:
        assert (line["tenant"], line["correlation_id"], line["request_id"]) == (tenant.slug, "order-42", None)
    assert events[-1]["package_bytes"] > 0 and "closed after" in events[-1]["message"]


def test_the_text_format_appends_the_context_on_the_first_line():
    formatter = TextFormatter()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with log_context(request_id="r1", tenant="acme\nFAKE 2020-01-01 ERROR forged"):
        text = formatter.format(record)
    assert text.endswith("INFO x: hello [request_id=r1 tenant=acme\\x0aFAKE 2020-01-01 ERROR forged]")
    assert "\n" not in text
    assert formatter.format(record).endswith("INFO x: hello")  # outside any context: nothing added


def test_an_unknown_log_format_is_refused():
    from tests.test_settings import load_settings

    result = load_settings(DJANGO_DEBUG="1", LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "LOG_FORMAT is 'xml': use text (the default) or json." in result.stderr
    assert load_settings(DJANGO_DEBUG="1", LOG_FORMAT="JSON").returncode == 0
