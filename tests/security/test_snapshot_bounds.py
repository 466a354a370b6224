"""The bounds of status snapshots within one process: a credential is re-read every 5 s
whatever Redis says, writes replace tokens even while reads of Redis fail, a replacement Redis
refused lands once it is back, untrusted headers make no snapshots, and one tenant cannot
evict another's."""
import time
from unittest import mock

import pytest
import redis
from django.db import connection
from django.utils import timezone

from exports.models import ExportJob
from sparkexport import snapshots
from sparkexport.snapshots import tokens
from tests.admin.conftest import make_job, store_package
from tests.conftest import SparkClient
from tests.factories import ServiceVersionFactory, make_api_key
from tests.reliability.conftest import private_redis  # noqa: F401  fixture
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db


def warm(client, url: str) -> None:
    for _ in range(2):
        assert client.get(url).status_code == 200


def test_a_key_revoked_behind_the_products_back_is_refused_within_five_seconds(tenant):
    """Raw SQL announces nothing; only the credential age limit ends the key's snapshot."""
    client = SparkClient(tenant.slug, make_api_key(tenant, name="raw"))
    url = client.api("export/status")
    warm(client, url)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tenants_apikey SET revoked_at = now() WHERE name = 'raw'")
    assert client.get(url).status_code == 200  # from the snapshot: nothing told the process
    later = time.monotonic() + snapshots.CREDENTIAL_MAX_AGE
    with mock.patch("time.monotonic", return_value=later):
        assert client.get(url).status_code == 401


def test_a_failed_read_of_redis_does_not_make_writes_skip_their_tokens(tenant, settings):
    watcher = redis.Redis.from_url(settings.REDIS_URL)
    snapshots.tokens_start(["scope-w"])
    before = watcher.get(snapshots.TOKEN_PREFIX + "scope-w")
    tokens.read_breaker.trip(ConnectionError("an idle disconnect"))
    assert snapshots.current_tokens(["scope-w"]) is None  # reads step aside...
    snapshots.scopes_changed("scope-w")
    assert watcher.get(snapshots.TOKEN_PREFIX + "scope-w") not in (None, before)  # ...writes do not


def test_a_replacement_redis_refused_lands_once_redis_is_back(private_redis, settings, django_capture_on_commit_callbacks):
    settings.REDIS_URL = private_redis.url
    private_redis.stop()
    with django_capture_on_commit_callbacks(execute=True):
        snapshots.scopes_changed("scope-r")  # refused now, and at commit
    assert len(tokens.pending) == 1
    private_redis.start()
    wait_for(lambda: private_redis.connection().get(snapshots.TOKEN_PREFIX + "scope-r"), 30, message="the retry")
    wait_for(lambda: len(tokens.pending) == 0, 30, message="the pending list to empty")


def test_untrusted_forwarded_hosts_make_no_snapshots_and_no_links(tenant, settings):
    settings.USE_X_FORWARDED_HOST = False
    version = ServiceVersionFactory(service__folder__tenant=tenant)
    job = make_job(tenant, versions=[version], created_by_key=None)
    store_package(job)
    client = SparkClient(tenant.slug, make_api_key(tenant, supervisor=True))
    url = client.api(f"export/{job.pk}/status")
    warm(client, url)
    snapshots.store.clear()
    for n in range(50):
        document = client.get(url, HTTP_X_FORWARDED_HOST=f"evil{n}.example").json()
        assert document["outputs"]["files"][0]["file"].startswith("http://testserver/")
    assert len([key for key in snapshots.store._entries if key[0] == "export-status"]) == 1


def test_one_tenant_cannot_evict_another_tenants_snapshots():
    store = snapshots.SnapshotStore(max_weight=100)  # a tenant may hold 25 once it is full
    now = time.monotonic()
    for n in range(30):
        store.put(("quiet", n), ("t",), n, born=now, owner="quiet")
    for n in range(500):
        store.put(("flood", n), ("t",), n, born=now, owner="flood")
    assert [store.get(("quiet", n), ("t",)) for n in range(30)] == list(range(30))
    assert sum(store.get(("flood", n), ("t",)) is not None for n in range(500)) == 70


def test_a_snapshot_ages_from_the_token_read_not_from_when_it_was_stored(tenant):
    store = snapshots.SnapshotStore()
    read_at = time.monotonic() - 4.5  # the database read took 4.5 s
    store.put("key", ("t",), "K", born=read_at, max_age=snapshots.CREDENTIAL_MAX_AGE)
    assert store.get("key", ("t",)) == "K"
    with mock.patch("time.monotonic", return_value=read_at + snapshots.CREDENTIAL_MAX_AGE):
        assert store.get("key", ("t",)) is None


def test_a_job_written_by_update_is_seen_by_the_next_poll(api, tenant):
    """`update()` in a shell or a script goes through the same announcement as the services."""
    version = ServiceVersionFactory(service__folder__tenant=tenant)
    response = api.post(api.api("export"), {"inputs": {"version_ids": [str(version.version_id)]}}, format="json")
    job_id = response.json()["id"]
    warm(api, api.api(f"export/{job_id}/status"))
    ExportJob.objects.filter(pk=job_id).update(status="failed", finished_at=timezone.now())
    assert api.get(api.api(f"export/{job_id}/status")).json()["status"] == "failed"
