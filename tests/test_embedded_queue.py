"""Without Redis (development mode) jobs run in a thread of the web process."""
import pytest

from exports.models import TERMINAL_STATES, ExportJob, JobStatus
from tests.factories import ServiceVersionFactory
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_embedded_queue_runs_the_export_in_process(api, tenant, settings):
    settings.EMBEDDED_QUEUE = True
    ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing")

    job_id = api.post(api.api("export"), {"inputs": {"folders": ["pricing"]}}, format="json").json()["id"]

    wait_for(lambda: ExportJob.objects.get(pk=job_id).status in TERMINAL_STATES, 20, interval=0.05,
             message="the in-process job to end")
    status = api.get(api.api(f"export/{job_id}/status")).json()
    assert status["status"] == JobStatus.CLOSED
    assert api.get(status["outputs"]["files"][0]["file"]).status_code == 200
