"""A first pass over the export API: create, poll, download, across two tenants."""
import pytest

from tests.factories import ServiceVersionFactory

pytestmark = pytest.mark.django_db


def test_post_export_answers_the_status_document(api, tenant):
    version = ServiceVersionFactory(service__folder__tenant=tenant)
    response = api.post(api.api("export"), {"inputs": {"version_ids": [str(version.version_id)]}}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["object"] == "export"
    assert body["status"] == "created"
    assert body["outputs"]["service_versions"][0]["version_id_source"] == str(version.version_id)


def test_other_tenant_gets_404_for_a_job(api, other_api, tenant):
    version = ServiceVersionFactory(service__folder__tenant=tenant)
    job_id = api.post(api.api("export"), {"inputs": {"version_ids": [str(version.version_id)]}}, format="json").json()["id"]
    response = other_api.get(other_api.api(f"export/{job_id}/status"))
    assert response.status_code == 404
    assert response.json()["code"] == "JOB_NOT_FOUND"
