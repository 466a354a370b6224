"""Progress seen from outside: a 300 MB export packaged by a real worker process, polled over
HTTP through a real server, shows its bytes going up until it is closed."""
import hashlib
import os
import zlib

import pytest
from django.core.files.base import ContentFile

from exports.models import JobStatus, TERMINAL_STATES
from tenants.models import MB
from tests.factories import ServiceVersionFactory
from tests.reliability.conftest import tenant_api
from tests.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def big_versions(tenant, count: int, size: int) -> None:
    """Versions whose Neuron packages are `size` random bytes each (stored, not compressed)."""
    for n in range(count):
        version = ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="big",
                                        service__name="huge", version=f"1.{n}.0")
        data = os.urandom(size)
        version.neuron.save("neuron.zip", ContentFile(data), save=False)
        version.neuron_size, version.neuron_crc32 = len(data), zlib.crc32(data)
        version.neuron_sha256 = hashlib.sha256(data).hexdigest()
        version.save()


def test_a_300_mb_export_shows_its_bytes_going_up_to_polls(processes, tenant):
    tenant.max_package_bytes = 400 * MB
    tenant.save()
    big_versions(tenant, 3, 100 * MB)
    server = processes.server()
    processes.worker(slow_read_seconds=0.01)  # a slow disk: about 3 s for 300 reads of 1 MiB
    api = tenant_api(server, tenant)

    job_id = api.post_export({"inputs": {"folders": ["big"]}}).json()["id"]
    seen = []

    def finished() -> bool:
        document = api.status(job_id).json()
        seen.append((document["status"], document["progress"]))
        return document["status"] in TERMINAL_STATES

    wait_for(finished, 120, interval=0.05, message=f"export {job_id} to finish")

    status, final = seen[-1]
    assert status == JobStatus.CLOSED
    assert final["bytes_done"] == final["bytes_total"] > 300 * MB
    assert final["entries_done"] == final["entries_total"] == 1 + 3 * 3
    running = [p["bytes_done"] for s, p in seen if s == JobStatus.IN_PROGRESS and p["bytes_total"]]
    assert running == sorted(running), "progress went backwards"
    assert len(set(running)) >= 3, f"polls saw too few steps: {running}"
    assert all(p["bytes_total"] == final["bytes_total"] for s, p in seen if s == JobStatus.IN_PROGRESS and p["bytes_total"])
