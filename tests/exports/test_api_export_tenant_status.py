"""GET export/status: jobs in progress and of the past hour, visibility, the query count."""
from datetime import timedelta

import pytest

from exports.models import JobStatus
from tests.exports.api_helpers import (
    ISO_UTC_RE,
    make_job,
)
from tests.query_counts import assert_queries

pytestmark = pytest.mark.django_db


def test_tenant_status_lists_in_progress_and_recent_jobs(api, tenant):
    running = make_job(tenant, status=JobStatus.IN_PROGRESS)
    waiting = make_job(tenant)
    recent = make_job(tenant, status=JobStatus.CLOSED, finished_ago=timedelta(minutes=59))
    failed = make_job(tenant, status=JobStatus.FAILED, finished_ago=timedelta(minutes=1))
    make_job(tenant, status=JobStatus.CLOSED, finished_ago=timedelta(minutes=61))
    make_job(tenant, status=JobStatus.CANCELLED, finished_ago=timedelta(days=2))

    response = api.get(api.api("export/status"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"in_progress_exports", "recent_exports", "tenant"}
    assert {job["id"] for job in body["in_progress_exports"]} == {str(running.pk), str(waiting.pk)}
    assert {job["id"] for job in body["recent_exports"]} == {str(recent.pk), str(failed.pk)}
    assert body["tenant"] == {
        "configuration": {"export_api_job_limit": 1},
        "status": {"export_api_jobs_in_progress": 2},
    }
    summary = next(job for job in body["recent_exports"] if job["id"] == str(recent.pk))
    assert summary["object"] == "export"
    data = summary["data"]
    assert set(data) == {
        "export_status", "response_timestamp", "created_by", "created_timestamp",
        "updated_timestamp", "process_time",
    }
    assert data["export_status"] == "closed"
    assert data["created_by"] == "ci-key"
    for field in ("response_timestamp", "created_timestamp", "updated_timestamp"):
        assert ISO_UTC_RE.match(data[field]), data[field]
    assert isinstance(data["process_time"], int)


def test_tenant_status_shows_the_configured_limit(api, tenant):
    tenant.export_api_job_limit = 3
    tenant.save(update_fields=["export_api_job_limit"])
    body = api.get(api.api("export/status")).json()
    assert body["tenant"]["configuration"]["export_api_job_limit"] == 3
    assert body["in_progress_exports"] == [] and body["recent_exports"] == []


def test_job_posted_through_the_api_shows_its_creator(api, job_id):
    (summary,) = api.get(api.api("export/status")).json()["in_progress_exports"]
    assert summary["id"] == job_id
    assert summary["data"]["created_by"] == "ci-key"
    assert summary["data"]["export_status"] == "created"


def test_normal_key_sees_only_its_own_jobs_supervisor_sees_all(api, second_api, supervisor_api, tenant, other_api, other_tenant):
    mine = make_job(tenant)
    theirs = make_job(tenant, key_name="second-key")
    boss = make_job(tenant, key_name="boss-key", status=JobStatus.CLOSED, finished_ago=timedelta(minutes=5))
    make_job(other_tenant, key_name="globex-key")

    def ids(client):
        body = client.get(client.api("export/status")).json()
        return {job["id"] for job in body["in_progress_exports"] + body["recent_exports"]}

    assert ids(api) == {str(mine.pk)}
    assert ids(second_api) == {str(theirs.pk)}
    assert ids(supervisor_api) == {str(mine.pk), str(theirs.pk), str(boss.pk)}
    # the tenant-wide count is the tenant's, whoever asks
    assert api.get(api.api("export/status")).json()["tenant"]["status"]["export_api_jobs_in_progress"] == 2
    assert other_api.get(other_api.api("export/status")).json()["tenant"]["status"]["export_api_jobs_in_progress"] == 1


# --- query counts -------------------------------------------------------------------------


def test_tenant_status_query_count_does_not_grow_with_jobs(api, tenant):
    api.get(api.api("export/status"))  # records the key's last use outside the measurement
    make_job(tenant)
    response = assert_queries("GET export/status, a new document", lambda: api.get(api.api("export/status")))
    assert len(response.json()["in_progress_exports"]) == 1
    for _ in range(10):
        make_job(tenant)
        make_job(tenant, status=JobStatus.CLOSED, finished_ago=timedelta(minutes=3))
    response = assert_queries("GET export/status, a new document", lambda: api.get(api.api("export/status")))
    assert len(response.json()["in_progress_exports"]) + len(response.json()["recent_exports"]) == 21
