"""An out-of-process `rqworker --burst` packages a job created through the API."""
import hashlib

import pytest

from tests.e2e.conftest import manage
from tests.factories import ServiceVersionFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_rqworker_burst_process_packages_the_job(api, tenant, redis_queue):
    ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing", service__name="quote", version="1.0.0")
    job_id = api.post(api.api("export"), {"inputs": {"folders": ["pricing"]}}, format="json").json()["id"]
    assert redis_queue.job_ids == [job_id]

    result = manage("rqworker", "exports", "--burst")
    assert result.returncode == 0, result.stderr

    status = api.get(api.api(f"export/{job_id}/status")).json()
    assert status["status"] == "closed", status
    response = api.get(status["outputs"]["files"][0]["file"])
    package = b"".join(response.streaming_content)
    assert hashlib.sha256(package).hexdigest() == status["outputs"]["files"][0]["file_hash"]
