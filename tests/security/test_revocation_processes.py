"""A revoked key is refused by every process within 5 s of the revoke, whatever happens to Redis.

Real processes: gunicorn with two workers answering polls from their snapshots, a management
command (or an admin action served by another gunicorn) revoking the key, and a Redis of the
test's own that fails in the ways production Redis does: a process's connection dropped, a
restart empty, a restore from an older dump, a replica promoted, a writer cut off from it.
Each test records when every poll was sent and asserts that none sent later than 5 s after
the revoke was accepted; most also assert the first poll after the event already refuses.
"""
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.contrib.auth import get_user_model

from exports.models import ExportJob, JobStatus
from tenants.models import ApiKey
from tests.e2e.conftest import ROOT, process_env
from tests.factories import make_api_key
from tests.reliability.conftest import (  # noqa: F401  fixtures
    PrivateRedis,
    TcpProxy,
    TenantAPI,
    free_port,
    private_redis,
    processes,
    seed_catalog,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

CREDENTIAL_BOUND_SECONDS = 5.0


def poll_round(api: TenantAPI, count: int = 16) -> list[int]:
    """`count` polls from 8 threads, each on a new connection, so every gunicorn worker answers."""

    def one(_):
        return httpx.get(f"{api.base}/export/status", headers={**api.headers, "Connection": "close"}, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


# Polls go on this long past the revoke: past the credential bound, and past the 5 s a
# process leaves Redis alone after a failure (when a stale snapshot could come back).
WATCH_SECONDS = CREDENTIAL_BOUND_SECONDS + 4


class Poller:
    """Polls from 4 threads until WATCH_SECONDS after `watch(revoked)`, recording (wall time
    sent, status) of each poll."""

    def __init__(self, api: TenantAPI):
        self.api = api
        self.results: list[tuple[float, int]] = []
        self.until = None
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(4)]

    def _run(self):
        with httpx.Client(headers=self.api.headers, timeout=30) as client:
            while not self._stop.is_set():
                sent = time.time()
                status = client.get(f"{self.api.base}/export/status", headers={"Connection": "close"}).status_code
                self.results.append((sent, status))

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def watch(self, revoked: float) -> float:
        self.until = revoked + WATCH_SECONDS
        return revoked

    def __exit__(self, *exc):
        if exc[0] is None and self.until is not None:
            time.sleep(max(0.0, self.until - time.time()))
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def revoked_at(name: str) -> float:
    return ApiKey.objects.get(name=name, revoked_at__isnull=False).revoked_at.timestamp()


def assert_refused_within_the_bound(results: list[tuple[float, int]], revoked: float) -> float:
    """No poll sent more than the bound after the revoke was accepted; answers when the last
    200 was sent, relative to the revoke (negative: none after it)."""
    late = [(round(sent - revoked, 3), status) for sent, status in results if sent > revoked + CREDENTIAL_BOUND_SECONDS and status != 401]
    assert not late, f"accepted after the bound: {late[:5]}"
    assert any(status == 401 for _, status in results), "the revoke was never seen"
    accepted = [sent - revoked for sent, status in results if status == 200 and sent > revoked]
    return max(accepted, default=-1.0)


def rotate(redis_url: str, tenant_slug: str, name: str) -> subprocess.CompletedProcess:
    """The operator's revoke: `apikey_create --rotate` in a process of its own."""
    result = subprocess.run(
        [sys.executable, "manage.py", "apikey_create", tenant_slug, "--name", name, "--rotate", "--json"],
        cwd=ROOT, env={**process_env(), "REDIS_URL": redis_url}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def warm(processes, tenant):
    """A gunicorn with two workers on the given Redis, and the key's snapshots built in both."""

    def start(redis_url: str, name: str = "poller") -> TenantAPI:
        seed_catalog(tenant, versions=1)
        server = processes.server(redis_url=redis_url, workers=2, threads=4, AUTH_FAILURE_RATE="100000/min")
        api = TenantAPI(server.base_url, tenant.slug, make_api_key(tenant, name=name))
        for _ in range(3):
            assert set(poll_round(api)) == {200}
        return api

    return start


# --- a write never skips its invalidation because reads failed ---------------------------


def admin_session(base_url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)
    page = client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    response = client.post("/admin/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/admin/"})
    assert response.status_code == 302, response.text[:300]
    return client


def admin_revoke(session: httpx.Client, api_key: ApiKey) -> None:
    page = session.get("/admin/tenants/apikey/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    response = session.post(
        "/admin/tenants/apikey/",
        data={"action": "revoke_keys", "_selected_action": [str(api_key.pk)], "csrfmiddlewaretoken": token, "index": "0"},
    )
    assert response.status_code == 302, response.text[:300]


def test_a_revoke_by_a_process_whose_redis_reads_failed_reaches_every_process(processes, private_redis, warm, tenant):
    """The admin process lost its Redis connections (an idle disconnect): its next poll fails
    to read tokens. Its revoke right after must still replace the token the others check."""
    api = warm(private_redis.url)
    proxy = TcpProxy(private_redis.port)
    try:
        admin_server = processes.server(redis_url=proxy.url, workers=1, threads=2)
        get_user_model().objects.create_superuser("operator", "op@example.test", "pw-for-tests")
        session = admin_session(admin_server.base_url, "operator", "pw-for-tests")
        admin_api = TenantAPI(admin_server.base_url, tenant.slug, api.headers["x-synthetic-key"])
        assert admin_api.tenant_status().status_code == 200  # its mirror is connected
        proxy.drop()
        assert admin_api.tenant_status().status_code == 200  # answered from the database
        with Poller(api) as poller:
            admin_revoke(session, ApiKey.objects.get(name="poller"))
            revoked = poller.watch(revoked_at("poller"))
            assert set(poll_round(api)) == {401}  # at once, in both workers
        assert_refused_within_the_bound(poller.results, revoked)
    finally:
        proxy.close()


# --- Redis goes away, comes back empty, comes back with the past -----------------------------


def test_redis_restarted_empty(private_redis, warm, tenant):
    api = warm(private_redis.url)
    with Poller(api) as poller:
        private_redis.stop()
        rotate(private_redis.url, tenant.slug, "poller")  # its token replacement cannot land
        revoked = poller.watch(revoked_at("poller"))
        private_redis.start()
    assert_refused_within_the_bound(poller.results, revoked)


def test_redis_restored_from_a_dump_taken_before_the_revoke(private_redis, warm, tenant):
    """The dump brings back the token value the snapshots were tagged with: it must not make
    them current again."""
    api = warm(private_redis.url)
    backup = private_redis.save_dump()
    rotate(private_redis.url, tenant.slug, "poller")  # no poll in between: the snapshots stay
    revoked = revoked_at("poller")
    private_redis.stop()
    private_redis.start(dump=backup)
    with Poller(api) as poller:
        poller.watch(revoked)
        assert set(poll_round(api)) == {401}  # at once: the tokens are another instance's
    assert_refused_within_the_bound(poller.results, revoked)


def tokens_of(server: PrivateRedis) -> dict:
    connection = server.connection()
    keys = sorted(connection.keys("sparkexport:snapshot-token:*"))
    return dict(zip(keys, connection.mget(keys))) if keys else {}


def test_a_promoted_replica_that_missed_the_revoke(processes, private_redis, tmp_path, tenant):
    """The replica stopped replicating before the revoke's token reached it (a failover that
    loses the last writes); the servers reach Redis through an address that moves to it."""
    replica = PrivateRedis(tmp_path / "replica")
    (tmp_path / "replica").mkdir()
    proxy = TcpProxy(private_redis.port)
    try:
        replica.start(replica_of=private_redis)
        seed_catalog(tenant, versions=1)
        server = processes.server(redis_url=proxy.url, workers=2, threads=4, AUTH_FAILURE_RATE="100000/min")
        api = TenantAPI(server.base_url, tenant.slug, make_api_key(tenant, name="poller"))
        for _ in range(3):
            assert set(poll_round(api)) == {200}
        wait_for(lambda: tokens_of(replica) == tokens_of(private_redis), 30, message="the replica to catch up")
        replica.connection().replicaof("NO", "ONE")
        rotate(proxy.url, tenant.slug, "poller")  # written to the old primary only
        revoked = revoked_at("poller")
        proxy.switch(replica.port)
        with Poller(api) as poller:
            poller.watch(revoked)
            assert set(poll_round(api)) == {401}
        assert_refused_within_the_bound(poller.results, revoked)
    finally:
        proxy.close()
        replica.stop()


def test_a_writer_cut_off_from_redis_is_bounded_by_the_credential_age(private_redis, warm, tenant):
    """The revoking process cannot reach Redis at all while the servers can: nothing tells
    them, and only the 5 s age limit of credential snapshots makes them read the database."""
    api = warm(private_redis.url)
    with Poller(api) as poller:
        rotate(f"redis://127.0.0.1:{free_port()}/0", tenant.slug, "poller")
        revoked = poller.watch(revoked_at("poller"))
    last_accepted = assert_refused_within_the_bound(poller.results, revoked)
    assert last_accepted <= CREDENTIAL_BOUND_SECONDS


# --- job documents: a token from the past does not bring back an old status ------------------


def test_a_restored_token_does_not_bring_back_an_old_job_status(private_redis, warm, tenant, settings):
    api = warm(private_redis.url)
    job_id = api.post_export().json()["id"]
    for _ in range(3):
        assert set(poll_job(api, job_id)) == {JobStatus.CREATED}
    backup = private_redis.save_dump()
    settings.REDIS_URL = private_redis.url  # this process writes as a worker would
    ExportJob.objects.filter(pk=job_id).update(status=JobStatus.CANCELLED)
    private_redis.stop()
    private_redis.start(dump=backup)
    seen = set()
    deadline = time.monotonic() + WATCH_SECONDS  # past any backoff after the restart
    while time.monotonic() < deadline:
        seen.update(poll_job(api, job_id, count=8))
    assert seen == {JobStatus.CANCELLED}


def poll_job(api: TenantAPI, job_id: str, count: int = 16) -> list[str]:
    def one(_):
        url = f"{api.base}/export/{job_id}/status"
        return httpx.get(url, headers={**api.headers, "Connection": "close"}, timeout=30).json()["status"]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))
