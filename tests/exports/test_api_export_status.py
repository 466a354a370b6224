"""GET export/{id}/status: the status document, who may read it, and its query count."""
import uuid
from datetime import timedelta

import pytest

from exports.models import ExportJob, JobStatus
from tests.exports.api_helpers import (
    ISO_UTC_RE,
    assert_error,
    close_job,
    make_job,
    make_versions,
    post_export,
)
from tests.query_counts import assert_queries

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["export/{}/status", "export/{}"])
def test_unknown_job_is_job_not_found(api, path):
    job_id = str(uuid.uuid4())
    method = api.get if path.endswith("status") else api.patch
    response = method(api.api(path.format(job_id)), {"export_status": "cancelled"}, format="json")
    assert_error(response, 404, "JOB_NOT_FOUND", job_id)


@pytest.mark.parametrize("job_ref", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000Z"])
def test_malformed_job_id_is_job_not_found(api, job_ref):
    assert_error(api.get(api.api(f"export/{job_ref}/status")), 404, "JOB_NOT_FOUND", job_ref)
    response = api.patch(api.api(f"export/{job_ref}"), {"export_status": "cancelled"}, format="json")
    assert_error(response, 404, "JOB_NOT_FOUND")


def test_job_of_another_tenant_is_not_found(api, other_api, job_id):
    assert_error(other_api.get(other_api.api(f"export/{job_id}/status")), 404, "JOB_NOT_FOUND")
    response = other_api.patch(other_api.api(f"export/{job_id}"), {"export_status": "cancelled"}, format="json")
    assert_error(response, 404, "JOB_NOT_FOUND")
    # even on the job's own tenant URL, other credentials are refused
    other_api.tenant_slug = "acme"
    assert other_api.get(other_api.api(f"export/{job_id}/status")).status_code == 403
    assert ExportJob.objects.get(pk=job_id).status == JobStatus.CREATED


def test_job_of_another_caller_is_not_found_for_a_normal_key(api, second_api, job_id):
    assert_error(second_api.get(second_api.api(f"export/{job_id}/status")), 404, "JOB_NOT_FOUND")
    response = second_api.patch(second_api.api(f"export/{job_id}"), {"export_status": "cancelled"}, format="json")
    assert_error(response, 404, "JOB_NOT_FOUND")
    close_job(job_id)
    response = second_api.get(second_api.api(f"export/{job_id}/file/package.zip"))
    assert_error(response, 404, "JOB_NOT_FOUND")
    assert ExportJob.objects.get(pk=job_id).status == JobStatus.CLOSED


def test_supervisor_sees_and_cancels_another_callers_job(api, supervisor_api, job_id):
    response = supervisor_api.get(supervisor_api.api(f"export/{job_id}/status"))
    assert response.status_code == 200
    assert response.json()["id"] == job_id
    response = supervisor_api.patch(supervisor_api.api(f"export/{job_id}"), {"export_status": "cancelled"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


# --- status documents ---------------------------------------------------------------------


def test_status_document_has_exactly_the_contract_fields(api, catalog):
    response = post_export(api, {"inputs": {"services": ["finance/quotes[1.0]"]}})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    for document in (response.json(), api.get(response.json()["status_url"]).json()):
        assert set(document) == {
            "object", "id", "response_timestamp", "status", "status_url", "process_time",
            "outputs", "errors", "source_system", "correlation_id", "progress",
        }
        # Not started yet: nothing done, and the totals are not known.
        assert document["progress"] == {"entries_done": 0, "entries_total": None, "bytes_done": 0, "bytes_total": None}
        job_id = document["id"]
        assert uuid.UUID(job_id)
        assert document["object"] == "export"
        assert ISO_UTC_RE.match(document["response_timestamp"])
        assert document["status"] == "created"
        assert document["status_url"] == f"http://testserver/acme/api/v4/export/{job_id}/status"
        assert isinstance(document["process_time"], int) and document["process_time"] >= 0
        assert document["errors"] is None
        assert set(document["outputs"]) == {"files", "services", "service_versions", "dependencies"}
        assert document["outputs"]["dependencies"] == []  # the fixture's workbooks call nothing
        assert document["outputs"]["files"] == []
        quotes = catalog["quotes"][0]
        assert document["outputs"]["services"] == [
            {
                "service_uri_source": "finance/quotes",
                "folder_source": "finance",
                "service_source": "quotes",
                "service_id_source": str(quotes.service.service_id),
            }
        ]
        assert document["outputs"]["service_versions"] == [
            {
                "service_uri_source": "finance/quotes[1.0.0]",
                "folder_source": "finance",
                "service_source": "quotes",
                "version_source": "1.0.0",
                "service_id_source": str(quotes.service.service_id),
                "version_id_source": str(quotes.version_id),
            }
        ]


def test_status_url_points_at_get_status(api, job_id):
    url = api.get(api.api(f"export/{job_id}/status")).json()["status_url"]
    response = api.get(url)
    assert response.status_code == 200
    assert response.json()["id"] == job_id


@pytest.mark.parametrize(
    "status", [JobStatus.CREATED, JobStatus.IN_PROGRESS, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.CLOSED_BY_TIMEOUT]
)
def test_files_are_listed_only_for_closed_jobs(api, job_id, status):
    close_job(job_id, status=status)
    document = api.get(api.api(f"export/{job_id}/status")).json()
    assert document["status"] == status
    assert document["outputs"]["files"] == []


def test_failed_job_reports_its_errors(api, job_id):
    errors = [{"code": "STORAGE_ERROR", "message": "Disk full."}]
    close_job(job_id, status=JobStatus.FAILED, package="", errors=errors)
    document = api.get(api.api(f"export/{job_id}/status")).json()
    assert document["status"] == "failed"
    assert document["errors"] == errors


def test_process_time_of_a_finished_job_is_fixed(api, job_id):
    job = ExportJob.objects.get(pk=job_id)
    close_job(job_id, finished_at=job.created_at + timedelta(seconds=3))
    assert api.get(api.api(f"export/{job_id}/status")).json()["process_time"] == 3000


# --- query counts -------------------------------------------------------------------------


def test_job_status_query_count_does_not_grow_with_versions(api, tenant):
    one = make_versions(tenant, "small", "svc", "1.0.0")
    many_versions = make_versions(tenant, "large", "svc", *[f"1.{i}.0" for i in range(20)])
    small_job = make_job(tenant, versions=one)
    large_job = make_job(tenant, versions=many_versions)
    api.get(api.api("export/status"))
    response = assert_queries("GET export/{id}/status, a new document", lambda: api.get(api.api(f"export/{small_job.pk}/status")))
    assert len(response.json()["outputs"]["service_versions"]) == 1
    response = assert_queries("GET export/{id}/status, a new document", lambda: api.get(api.api(f"export/{large_job.pk}/status")))
    assert len(response.json()["outputs"]["service_versions"]) == 20
