"""Idempotency-Key on job-creating POSTs, rate limits, and the audit trail."""
import json
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from exports.models import AuditEvent, ExportJob, ImportJob
from tenants.models import Folder
from tests.conftest import SparkClient
from tests.factories import ServiceVersionFactory, make_api_key
from tests.imports.conftest import source  # noqa: F401  (an exported package)

BODY = {"inputs": {"folders": ["pricing"]}, "correlation_id": "release-42"}


@pytest.fixture
def pricing(tenant):
    return ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing")


def post(api, body=BODY, key="retry-me-1"):
    return api.post(api.api("export"), body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_a_retry_with_the_same_key_and_body_gets_the_same_job(api, pricing, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as enqueued:
        first = post(api)
        retry = post(api)

    assert first.status_code == retry.status_code == 200
    assert first.json()["id"] == retry.json()["id"]
    assert ExportJob.objects.count() == 1
    assert len(enqueued) == 1  # queued once, not twice


@pytest.mark.django_db
def test_a_different_body_with_the_same_key_is_422(api, pricing):
    assert post(api).status_code == 200
    other = post(api, {**BODY, "correlation_id": "something else"})
    assert other.status_code == 422
    assert other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert other.json()["details"]["job_id"] == str(ExportJob.objects.get().pk)


@pytest.mark.django_db
def test_without_a_key_a_second_post_meets_the_job_limit(api, pricing):
    assert api.post(api.api("export"), BODY, format="json").status_code == 200
    assert api.post(api.api("export"), BODY, format="json").status_code == 429


@pytest.mark.django_db
def test_a_key_longer_than_200_characters_is_refused(api, pricing):
    response = post(api, key="k" * 201)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["message"]


@pytest.mark.django_db(transaction=True)
def test_simultaneous_retries_with_one_key_create_one_job(tenant, pricing, redis_queue):
    key = make_api_key(tenant)
    barrier = threading.Barrier(6)
    answers = []

    def send():
        client = SparkClient(tenant.slug, key)
        barrier.wait()
        try:
            response = post(client)
            answers.append((response.status_code, response.json()["id"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(6)]
    [thread.start() for thread in threads]
    [thread.join(timeout=30) for thread in threads]

    assert len(answers) == 6
    assert {status for status, _ in answers} == {200}
    assert len({job_id for _, job_id in answers}) == 1
    assert ExportJob.objects.count() == 1
    assert len(redis_queue.job_ids) == 1


@pytest.mark.django_db
def test_import_retry_with_the_same_key_gets_the_same_job(other_tenant, source, django_capture_on_commit_callbacks):
    Folder.objects.create(tenant=other_tenant, name="claims")
    importer = SparkClient(other_tenant.slug, make_api_key(other_tenant, name="importer"))
    entity = json.dumps({"inputs": {"services_modify": [{"service_uri_source": "claims/triage"}]}})

    def send(data=source):
        return importer.post(
            importer.api("import"),
            {"importRequestEntity": entity, "file": SimpleUploadedFile("p.zip", data)},
            format="multipart",
            HTTP_IDEMPOTENCY_KEY="import-1",
        )

    first, retry = send(), send()
    assert first.json()["id"] == retry.json()["id"]
    assert ImportJob.objects.count() == 1
    changed = send(source[:-1] + bytes([source[-1] ^ 1]))
    assert changed.status_code == 422
    assert changed.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.django_db
def test_authentication_failures_are_rate_limited_per_address(api, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth_failure": "3/min"}}
    bad = SparkClient("acme", "nope.nope")

    statuses = [bad.get(bad.api("export/status")).status_code for _ in range(5)]

    assert statuses == [401, 401, 401, 429, 429]
    limited = bad.get(bad.api("export/status"))
    assert limited.json()["code"] == "RATE_LIMITED"
    assert int(limited["Retry-After"]) > 0
    assert api.get(api.api("export/status")).status_code == 200  # valid credentials still work


@pytest.mark.django_db
def test_job_creating_posts_are_rate_limited_per_credential(api, pricing, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "job_create": "2/min"}}

    statuses = [api.post(api.api("export"), {"inputs": {"folders": ["nope"]}}, format="json").status_code for _ in range(3)]

    assert statuses == [404, 404, 429]
    assert api.get(api.api("export/status")).status_code == 200  # reads are not limited


@pytest.mark.django_db
def test_the_audit_trail_records_who_created_cancelled_and_downloaded(api, tenant, pricing, client, django_capture_on_commit_callbacks):
    job_id = post(api).json()["id"]
    api.patch(api.api(f"export/{job_id}"), {"export_status": "cancelled"}, format="json")

    events = list(AuditEvent.objects.filter(job_id=job_id).order_by("at").values_list("action", "actor", "credential"))

    assert events[0][:2] == ("created", "ci-key") and events[0][2].startswith("API key 'ci-key'")
    assert events[1][:2] == ("cancelled", "ci-key")
