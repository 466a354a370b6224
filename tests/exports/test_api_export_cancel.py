"""PATCH export/{id}: cancelling a job, and bodies that are not a cancel."""
import re

import pytest
from django.utils import timezone

from exports.models import ExportJob, JobStatus
from tests.exports.api_helpers import (
    assert_error,
    post_export,
)

pytestmark = pytest.mark.django_db


def test_cancel_answers_the_status_document(api, job_id):
    response = api.patch(api.api(f"export/{job_id}"), {"export_status": "cancelled"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["id"] == job_id
    assert body["status"] == "cancelled"
    assert body["outputs"]["files"] == []
    job = ExportJob.objects.get(pk=job_id)
    assert job.status == JobStatus.CANCELLED
    assert job.finished_at is not None


def test_cancel_in_progress_job(api, job_id):
    ExportJob.objects.filter(pk=job_id).update(status=JobStatus.IN_PROGRESS)
    response = api.patch(api.api(f"export/{job_id}"), {"export_status": "cancelled"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    "body", [{"export_status": "closed"}, {"export_status": "CANCELLED"}, {}, {"status": "cancelled"}, {"export_status": None}]
)
def test_cancel_with_another_value_is_invalid_request(api, job_id, body):
    response = api.patch(api.api(f"export/{job_id}"), body, format="json")
    assert_error(response, 400, "INVALID_REQUEST", "export_status")
    assert "non_field_errors" not in response.json()["message"]
    if body.get("export_status"):
        assert repr(body["export_status"]) in response.json()["message"]
        assert "'cancelled'" in response.json()["message"]
    assert ExportJob.objects.get(pk=job_id).status == JobStatus.CREATED


@pytest.mark.parametrize(
    "status", [JobStatus.CLOSED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.CLOSED_BY_TIMEOUT]
)
def test_cancel_finished_job_is_not_cancellable(api, job_id, status):
    ExportJob.objects.filter(pk=job_id).update(status=status, finished_at=timezone.now())
    response = api.patch(api.api(f"export/{job_id}"), {"export_status": "cancelled"}, format="json")
    body = assert_error(response, 409, "JOB_NOT_CANCELLABLE", job_id, f"'{status}'")
    assert body["details"] == {"status": status}
    assert ExportJob.objects.get(pk=job_id).status == status


def test_cancelling_frees_the_job_slot(api, catalog):
    first = post_export(api, {"inputs": {"services": ["finance/pricing"]}}).json()["id"]
    assert post_export(api, {"inputs": {"services": ["finance/quotes"]}}).status_code == 429
    api.patch(api.api(f"export/{first}"), {"export_status": "cancelled"}, format="json")
    response = post_export(api, {"inputs": {"services": ["finance/quotes"]}})
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize(
    "text",
    ["null", "[]", '"x"', '{"export_status": ["cancelled"]}', '{"export_status": {"a": 1}}', "{bad", '{"export_status": "\\ud800"}'],
)
def test_odd_cancel_bodies_answer_a_json_4xx(api, job_id, text):
    response = api.patch(api.api(f"export/{job_id}"), data=text.encode("utf-8", "surrogatepass"), content_type="application/json")
    assert 400 <= response.status_code < 500, response.content[:500]
    assert re.fullmatch(r"[A-Z_]+", response.json()["code"])
    assert ExportJob.objects.get(pk=job_id).status == JobStatus.CREATED
