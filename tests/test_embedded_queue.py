"""Without Redis (development mode) jobs run in a thread of the web process."""
import time

import pytest

from exports.models import TERMINAL_STATES, ExportJob, JobStatus
from tests.factories import ServiceVersionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_embedded_queue_runs_the_export_in_process(api, tenant, settings):
    settings.EMBEDDED_QUEUE = True
    ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing")

    job_id = api.post(api.api("export"), {"inputs": {"folders": ["pricing"]}}, format="json").json()["id"]

    deadline = time.monotonic() + 20
    while ExportJob.objects.get(pk=job_id).status not in TERMINAL_STATES and time.monotonic() < deadline:
        time.sleep(0.05)
    status = api.get(api.api(f"export/{job_id}/status")).json()
    assert status["status"] == JobStatus.CLOSED
    assert api.get(status["outputs"]["files"][0]["file"]).status_code == 200
