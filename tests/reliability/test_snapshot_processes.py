"""Status snapshots across real processes: gunicorn with 2 workers answers polls from the
snapshots each process keeps, and a write made anywhere else (a PATCH served by either worker,
a management command in its own process) is seen by every poll that follows it, whichever
worker answers."""
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from exports.snapshot_scopes import job_scope
from sparkexport import snapshots
from tests.e2e.conftest import manage
from tests.factories import make_api_key
from tests.reliability.conftest import TenantAPI, seed_catalog

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

POLLS = 64


def poll_everywhere(url: str, headers: dict) -> list[httpx.Response]:
    """POLLS GETs from 8 threads, each on a new connection, so both gunicorn workers answer."""

    def one(_):
        return httpx.get(url, headers={**headers, "Connection": "close"}, timeout=30)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(POLLS)))


def test_writes_in_other_processes_are_seen_by_every_following_poll(processes, tenant, settings):
    seed_catalog(tenant, versions=1)
    # The refused polls at the end must not meet the limit on failed authentications.
    server = processes.server(workers=2, threads=4, AUTH_FAILURE_RATE="100000/min")
    api = TenantAPI(server.base_url, tenant.slug, make_api_key(tenant, name="poller"))
    job_id = api.post_export().json()["id"]  # no worker runs: the job stays 'created'
    job_url, tenant_url = f"{api.base}/export/{job_id}/status", f"{api.base}/export/status"

    assert {r.json()["status"] for r in poll_everywhere(job_url, api.headers)} == {"created"}
    assert {len(r.json()["in_progress_exports"]) for r in poll_everywhere(tenant_url, api.headers)} == {1}
    tokens = redis.Redis.from_url(settings.REDIS_URL)
    assert tokens.exists(snapshots.TOKEN_PREFIX + job_scope(job_id))  # the snapshot path ran

    assert api.cancel(job_id).status_code == 200
    assert {r.json()["status"] for r in poll_everywhere(job_url, api.headers)} == {"cancelled"}
    assert {len(r.json()["in_progress_exports"]) for r in poll_everywhere(tenant_url, api.headers)} == {0}

    rotated = manage("apikey_create", tenant.slug, "--name", "poller", "--rotate", "--json")
    assert rotated.returncode == 0, rotated.stderr
    assert {r.status_code for r in poll_everywhere(job_url, api.headers)} == {401}
