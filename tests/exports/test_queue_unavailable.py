"""Redis or the database down: a clear 503 with Retry-After, and no job left holding a slot."""
import pytest

from exports.models import ExportJob, JobStatus
from tests.factories import ServiceVersionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_post_export_answers_503_and_frees_the_slot_when_redis_is_down(api, tenant, settings, redis_queue):
    ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing")
    reachable = settings.RQ_QUEUES
    settings.RQ_QUEUES = {**reachable, "exports": {**reachable["exports"], "URL": "redis://127.0.0.1:1/15"}}

    response = api.post(api.api("export"), {"inputs": {"folders": ["pricing"]}}, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "SERVICE_UNAVAILABLE"
    assert "Retry" in response.json()["message"]
    assert response["Retry-After"]
    job = ExportJob.objects.get()
    assert job.status == JobStatus.FAILED
    assert job.errors[0]["code"] == "SERVICE_UNAVAILABLE"
    assert api.get(api.api(f"export/{job.pk}/status")).status_code == 200

    settings.RQ_QUEUES = reachable
    assert api.post(api.api("export"), {"inputs": {"folders": ["pricing"]}}, format="json").status_code == 200
    assert len(redis_queue.job_ids) == 1


def test_database_unreachable_answers_503_not_500(api, tenant):
    from django.db import connection

    reachable_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        response = api.get(api.api("export/status"))
    finally:
        connection.close()
        connection.settings_dict["PORT"] = reachable_port

    assert response.status_code == 503
    assert response.json()["code"] == "SERVICE_UNAVAILABLE"
    assert response["Retry-After"]
    assert api.get(api.api("export/status")).status_code == 200
