"""/metrics in one process: the format, the token, and every metric moving when it should."""
import time

import pytest
from django.test import Client
from rq import SimpleWorker

from exports.models import ExportJob
from sparkexport.snapshots import SnapshotStore
from tests.ops.conftest import label_values, parse_scrape, value
from tests.factories import ServiceVersionFactory

pytestmark = pytest.mark.django_db

FAMILIES = {
    "sparkexport_jobs", "sparkexport_job_duration_seconds", "sparkexport_package_size_bytes",
    "sparkexport_jobs_in_progress", "sparkexport_queue_depth", "sparkexport_workers",
    "sparkexport_http_requests", "sparkexport_http_request_duration_seconds",
    "sparkexport_auth_failures", "sparkexport_snapshot_lookups",
}


def scrape(**headers) -> dict:
    response = Client().get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse_scrape(response.content.decode())


@pytest.fixture
def catalog(tenant):
    ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing", service__name="quote")


def post_export(api, capture, **body) -> str:
    with capture(execute=True):
        response = api.post(api.api("export"), {"inputs": {"folders": ["pricing"]}, **body}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["id"]


def run_worker(queue, capture) -> None:
    with capture(execute=True):
        SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_the_scrape_parses_and_names_every_family(api):
    from prometheus_client.parser import text_string_to_metric_families

    api.get(api.api("export/status"))  # a request, so that the HTTP series exist
    text = Client().get("/metrics").content.decode()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert FAMILIES - {"sparkexport_auth_failures", "sparkexport_snapshot_lookups"} <= names, names - FAMILIES
    assert "sparkexport_jobs_created" not in text  # no `_created` series to mistake for a status


def test_jobs_are_counted_when_created_and_when_they_finish(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    before = scrape()
    job_id = post_export(api, django_capture_on_commit_callbacks)
    queued = scrape()
    assert value(queued, "sparkexport_jobs_total", kind="export", status="created") == value(before, "sparkexport_jobs_total", kind="export", status="created") + 1
    assert value(queued, "sparkexport_jobs_in_progress", kind="export", status="created") == 1
    assert value(queued, "sparkexport_queue_depth", queue="exports") == 1

    run_worker(redis_queue, django_capture_on_commit_callbacks)
    after = scrape()
    job = ExportJob.objects.get(pk=job_id)
    for status in ("in_progress", "closed"):
        assert value(after, "sparkexport_jobs_total", kind="export", status=status) == value(before, "sparkexport_jobs_total", kind="export", status=status) + 1
    duration = "sparkexport_job_duration_seconds_count"
    assert value(after, duration, kind="export", status="closed") == value(before, duration, kind="export", status="closed") + 1
    size = "sparkexport_package_size_bytes_sum"
    assert value(after, size, kind="export") == value(before, size, kind="export") + job.file_size
    assert value(after, "sparkexport_jobs_in_progress", kind="export", status="created") == 0
    assert value(after, "sparkexport_queue_depth", queue="exports") == 0


def test_a_reused_package_counts_as_created_and_closed_without_a_duration(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    post_export(api, django_capture_on_commit_callbacks)
    run_worker(redis_queue, django_capture_on_commit_callbacks)
    before = scrape()
    post_export(api, django_capture_on_commit_callbacks, source_system="again")
    after = scrape()
    for status in ("created", "closed"):
        assert value(after, "sparkexport_jobs_total", kind="export", status=status) == value(before, "sparkexport_jobs_total", kind="export", status=status) + 1
    duration = "sparkexport_job_duration_seconds_count"
    assert value(after, duration, kind="export", status="closed") == value(before, duration, kind="export", status="closed")


def test_a_cancel_is_counted(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks)
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        assert api.patch(api.api(f"export/{job_id}"), {"export_status": "cancelled"}, format="json").status_code == 200
    after = scrape()
    assert value(after, "sparkexport_jobs_total", kind="export", status="cancelled") == value(before, "sparkexport_jobs_total", kind="export", status="cancelled") + 1


def test_http_requests_are_counted_by_view_and_status(api, other_api):
    before = scrape()
    api.get(api.api("export/status"))
    api.get(api.api("export/status"))
    other_api.get(api.api("export/status"))  # another tenant's key: 403
    after = scrape()
    counted = "sparkexport_http_requests_total"
    assert value(after, counted, view="export-tenant-status", method="GET", status="200") == value(before, counted, view="export-tenant-status", method="GET", status="200") + 2
    assert value(after, counted, view="export-tenant-status", method="GET", status="403") == value(before, counted, view="export-tenant-status", method="GET", status="403") + 1
    timed = "sparkexport_http_request_duration_seconds_count"
    assert value(after, timed, view="export-tenant-status") == value(before, timed, view="export-tenant-status") + 3


def test_an_unknown_path_is_one_series_whatever_its_text(db):
    before = scrape()
    for n in range(3):
        Client().get(f"/no-such-page-{n}")
    after = scrape()
    counted = "sparkexport_http_requests_total"
    assert value(after, counted, view="unmatched", method="GET", status="404") == value(before, counted, view="unmatched", method="GET", status="404") + 3
    assert not any("no-such-page" in label for label in label_values(after))


def test_auth_failures_are_counted_by_scheme(api, tenant):
    before = scrape()
    api.credentials(HTTP_X_SYNTHETIC_KEY="unknown.key", HTTP_X_TENANT_NAME=tenant.slug)
    assert api.get(api.api("export/status")).status_code == 401
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert api.get(api.api("export/status")).status_code == 401
    after = scrape()
    for scheme in ("api_key", "bearer_token"):
        assert value(after, "sparkexport_auth_failures_total", scheme=scheme) == value(before, "sparkexport_auth_failures_total", scheme=scheme) + 1


def test_snapshot_hits_and_misses_are_counted_by_kind(db):
    store = SnapshotStore()
    before = scrape()
    store.put(("export-status", 1), ("token",), "document", born=time.monotonic())
    store.get(("export-status", 1), ("token",))
    store.get(("export-status", 1), ("another token",))
    store.get(("api-key", b"digest"), ("token",))
    after = scrape()
    lookups = "sparkexport_snapshot_lookups_total"
    assert value(after, lookups, kind="export-status", result="hit") == value(before, lookups, kind="export-status", result="hit") + 1
    assert value(after, lookups, kind="export-status", result="miss") == value(before, lookups, kind="export-status", result="miss") + 1
    assert value(after, lookups, kind="api-key", result="miss") == value(before, lookups, kind="api-key", result="miss") + 1


def test_no_label_is_a_tenant_or_a_job(api, tenant, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks)
    run_worker(redis_queue, django_capture_on_commit_callbacks)
    api.get(api.api(f"export/{job_id}/status"))
    labels = label_values(scrape())
    assert tenant.slug not in labels and job_id not in labels
    assert not any(tenant.slug in label or job_id in label for label in labels)


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic bWV0cmljcw==", "metrics-token-for-tests"])
def test_with_a_token_set_a_scrape_without_it_is_refused(settings, db, authorization):
    settings.METRICS_TOKEN = "metrics-token-for-tests"
    before = scrape(HTTP_AUTHORIZATION="Bearer metrics-token-for-tests")
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = Client().get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"sparkexport_" not in response.content
    after = scrape(HTTP_AUTHORIZATION="Bearer metrics-token-for-tests")
    failures = "sparkexport_auth_failures_total"
    assert value(after, failures, scheme="metrics_token") == value(before, failures, scheme="metrics_token") + 1


def test_a_failed_admin_login_is_an_auth_failure(db):
    before = scrape()
    response = Client().post("/admin/login/?next=/admin/", {"username": "nobody", "password": "wrong-password-1"})
    assert response.status_code == 200  # the form again, with its error
    after = scrape()
    failures = "sparkexport_auth_failures_total"
    assert value(after, failures, scheme="admin_password") == value(before, failures, scheme="admin_password") + 1


def test_a_worker_refuses_a_metrics_port_without_a_directory(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from sparkexport import metrics
    from sparkexport.worker import metrics_server_start

    monkeypatch.setattr(metrics, "MULTIPROCESS", False)
    with pytest.raises(ImproperlyConfigured, match="METRICS_PORT needs PROMETHEUS_MULTIPROC_DIR"):
        metrics_server_start("127.0.0.1", 0)
