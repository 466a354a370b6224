"""The per-tenant job limit under 50 simultaneous POST export over HTTP: gunicorn with 2
processes × 8 threads on the test PostgreSQL database, real Redis, no worker (jobs stay
active, so the limit is what answers)."""
import pytest

from exports.models import ExportJob, JobStatus
from tests.reliability.conftest import active_jobs, post_concurrently, seed_catalog, tenant_api

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

REQUESTS = 50
ROUNDS = 4


@pytest.mark.parametrize("limit", [1, 3])
def test_fifty_simultaneous_posts_get_exactly_limit_jobs(processes, tenant, redis_queue, limit):
    """Expected, in every round: exactly `limit` answers 200 and 50 - `limit` answers 429
    JOB_LIMIT_REACHED with Retry-After; zero 5xx, zero transport errors; exactly `limit`
    active rows and `limit` RQ jobs queued."""
    tenant.export_api_job_limit = limit
    tenant.save()
    seed_catalog(tenant, versions=1)
    # Job-creating POSTs are also rate limited per credential; keep that out of this test.
    server = processes.server(workers=2, threads=8, JOB_CREATE_RATE="100000/min")
    api = tenant_api(server, tenant)

    for round_ in range(ROUNDS):
        results = post_concurrently(api, REQUESTS)

        errors = [r for r in results if isinstance(r, Exception)]
        assert errors == [], f"round {round_}: {errors[:3]}"
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200] * limit + [429] * (REQUESTS - limit), f"round {round_}: {statuses}"
        for refused in (r for r in results if r.status_code == 429):
            assert refused.json()["code"] == "JOB_LIMIT_REACHED"
            assert int(refused.headers["Retry-After"]) > 0
        accepted = {r.json()["id"] for r in results if r.status_code == 200}
        assert active_jobs(tenant) == limit
        assert set(redis_queue.job_ids) == accepted

        ExportJob.objects.filter(tenant=tenant).update(status=JobStatus.CANCELLED)
        redis_queue.empty()
