"""The per-tenant job limit holds under simultaneous POSTs on PostgreSQL."""
import threading

import pytest
from django.db import connection

from exports.models import ACTIVE_STATES, ExportJob, JobStatus
from tests.conftest import SparkClient
from tests.factories import ServiceVersionFactory, make_api_key

pytestmark = pytest.mark.django_db(transaction=True)


def post_concurrently(tenant, key: str, count: int) -> list[int]:
    barrier = threading.Barrier(count)
    statuses = []

    def post():
        client = SparkClient(tenant.slug, key)
        barrier.wait()
        try:
            response = client.post(client.api("export"), {"inputs": {"folders": ["pricing"]}}, format="json")
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.json()["code"] == "JOB_LIMIT_REACHED"
                assert response["Retry-After"]
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


@pytest.mark.parametrize("limit", [1, 3])
def test_simultaneous_posts_never_exceed_the_job_limit(tenant, redis_queue, limit):
    tenant.export_api_job_limit = limit
    tenant.save()
    ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing")
    key = make_api_key(tenant)

    for _ in range(3):
        statuses = post_concurrently(tenant, key, 12)

        assert sorted(statuses) == [200] * limit + [429] * (12 - limit)
        assert ExportJob.objects.filter(tenant=tenant, status__in=ACTIVE_STATES).count() == limit
        assert len(redis_queue.job_ids) == limit
        ExportJob.objects.update(status=JobStatus.CANCELLED)
        redis_queue.empty()
