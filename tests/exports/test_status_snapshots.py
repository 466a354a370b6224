"""Status polls from snapshots: no SQL while nothing changed, never a stale answer after a write.

Everything here runs against the real Redis and PostgreSQL of the suite; the worker is a real
RQ SimpleWorker. A snapshot is built by the first poll that finds its tokens (a write starts a
token, and so does the first poll of a scope nobody has written yet), so `warm` polls twice.
"""
import gc
import json
import re
import socket
import threading
import time
import weakref
from datetime import timedelta
from unittest import mock

import pytest
import redis
from django.utils import timezone
from rq import SimpleWorker

from exports.purge import export_package_delete
from exports.models import ExportJob, JobStatus
from sparkexport import snapshots
from sparkexport.snapshots import tokens as token_store
from tenants.models import ApiKey, Permission
from tenants.services import apikey_create, apikey_revoke
from tests.conftest import SparkClient
from tests.factories import ServiceVersionFactory, make_api_key
from tests.query_counts import assert_queries

pytestmark = pytest.mark.django_db


def warm(client, url: str) -> dict:
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200, response.content
    return response.json()


def polled(client, url: str, source: str, **headers):
    """One GET, answered "from snapshots" or with "no snapshots": its query count is the
    baseline of that path (tests/query_baselines.json)."""
    path = "GET export/status" if url.endswith("/export/status") else "GET export/{id}/status"
    return assert_queries(f"{path}, {source}", lambda: client.get(url, **headers))


def without_timestamps(document: dict) -> dict:
    """The document less what each read makes anew: its time, and the signing time of its
    download links (a read a second later signs another link to the same file)."""
    document = json.loads(re.sub(r"token=[^\"]+", "token=…", json.dumps(document)))
    document["response_timestamp"] = None
    for kind in ("in_progress_exports", "recent_exports"):
        if kind in document:
            document[kind] = [{**item, "data": {**item["data"], "response_timestamp": None}} for item in document[kind]]
    return document


@pytest.fixture
def post_job(api, tenant, django_capture_on_commit_callbacks):
    def post(client=api) -> str:
        version = ServiceVersionFactory(service__folder__tenant=tenant)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(client.api("export"), {"inputs": {"version_ids": [str(version.version_id)]}}, format="json")
        assert response.status_code == 200, response.json()
        return response.json()["id"]

    return post


def run_worker(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


@pytest.fixture
def closed_job(post_job, redis_queue) -> str:
    job_id = post_job()
    run_worker(redis_queue)
    assert ExportJob.objects.get(pk=job_id).status == JobStatus.CLOSED
    return job_id


# --- no SQL while nothing changed ---------------------------------------------------------


def test_a_repeated_poll_of_a_finished_export_runs_no_query(api, closed_job):
    url = api.api(f"export/{closed_job}/status")
    fresh = warm(api, url)
    response = polled(api, url, "from snapshots")
    assert without_timestamps(response.json()) == without_timestamps(fresh)
    assert response.json()["response_timestamp"] >= fresh["response_timestamp"]
    download = api.get(response.json()["outputs"]["files"][0]["file"])
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"


def test_a_repeated_poll_of_the_tenant_status_runs_no_query(api, closed_job):
    url = api.api("export/status")
    fresh = warm(api, url)
    response = polled(api, url, "from snapshots")
    assert without_timestamps(response.json()) == without_timestamps(fresh)
    assert [job["id"] for job in response.json()["recent_exports"]] == [closed_job]


def test_a_job_in_progress_keeps_counting_its_time_from_a_snapshot(api, post_job):
    job_id = post_job()
    url = api.api(f"export/{job_id}/status")
    first = warm(api, url)
    warm(api, api.api("export/status"))
    later = timezone.now() + timedelta(seconds=5)
    with mock.patch("django.utils.timezone.now", return_value=later):
        response = polled(api, url, "from snapshots")
        tenant_response = polled(api, api.api("export/status"), "from snapshots")
    assert response.json()["process_time"] >= first["process_time"] + 5000
    [summary] = tenant_response.json()["in_progress_exports"]
    assert summary["data"]["process_time"] >= 5000


# --- every write is seen by the next poll -------------------------------------------------


def test_the_worker_finishing_is_seen_by_the_next_poll(api, post_job, redis_queue):
    job_id = post_job()
    assert warm(api, api.api(f"export/{job_id}/status"))["status"] == JobStatus.CREATED
    assert len(warm(api, api.api("export/status"))["in_progress_exports"]) == 1
    run_worker(redis_queue)
    document = api.get(api.api(f"export/{job_id}/status")).json()
    assert document["status"] == JobStatus.CLOSED and document["outputs"]["files"]
    tenant_document = api.get(api.api("export/status")).json()
    assert tenant_document["in_progress_exports"] == []
    assert [job["id"] for job in tenant_document["recent_exports"]] == [job_id]


def test_a_cancel_is_seen_by_the_next_poll(api, post_job):
    job_id = post_job()
    warm(api, api.api(f"export/{job_id}/status"))
    warm(api, api.api("export/status"))
    assert api.patch(api.api(f"export/{job_id}"), {"export_status": "cancelled"}, format="json").status_code == 200
    assert api.get(api.api(f"export/{job_id}/status")).json()["status"] == JobStatus.CANCELLED
    assert api.get(api.api("export/status")).json()["tenant"]["status"]["export_api_jobs_in_progress"] == 0


def test_a_new_job_is_listed_by_the_next_poll(api, tenant, post_job):
    warm(api, api.api("export/status"))
    job_id = post_job()
    assert [job["id"] for job in api.get(api.api("export/status")).json()["in_progress_exports"]] == [job_id]


def test_a_purged_package_is_seen_by_the_next_poll(api, closed_job):
    url = api.api(f"export/{closed_job}/status")
    warm(api, url)
    export_package_delete(ExportJob.objects.get(pk=closed_job))
    document = api.get(url).json()
    assert document["outputs"]["files"] == []
    assert document["errors"][0]["code"] == "PACKAGE_EXPIRED"


def test_a_deleted_job_is_gone_at_the_next_poll(api, closed_job):
    url = api.api(f"export/{closed_job}/status")
    warm(api, url)
    ExportJob.objects.filter(pk=closed_job).delete()
    assert api.get(url).status_code == 404
    assert api.get(api.api("export/status")).json()["recent_exports"] == []


def test_a_catalog_change_is_seen_by_the_next_poll(api, closed_job):
    url = api.api(f"export/{closed_job}/status")
    warm(api, url)
    service = ExportJob.objects.get(pk=closed_job).versions.get().service
    service.name = "renamed"
    service.save()
    [row] = api.get(url).json()["outputs"]["services"]
    assert row["service_source"] == "renamed"


def test_a_tenant_limit_change_is_seen_by_the_next_poll(api, tenant):
    url = api.api("export/status")
    assert warm(api, url)["tenant"]["configuration"]["export_api_job_limit"] == 1
    tenant.export_api_job_limit = 7
    tenant.save()
    assert api.get(url).json()["tenant"]["configuration"]["export_api_job_limit"] == 7


def test_an_old_job_leaves_the_recent_list_on_time(api, tenant):
    warm(api, api.api("export/status"))  # the key exists and has been used
    ExportJob.objects.create(
        tenant=tenant, status=JobStatus.FAILED, created_by="ci-key",
        created_by_key=ApiKey.objects.get(tenant=tenant, name="ci-key"), file_filter="migrate",
        version_filter="all", finished_at=timezone.now() - timedelta(minutes=59, seconds=58),
    )
    assert len(warm(api, api.api("export/status"))["recent_exports"]) == 1
    with mock.patch("django.utils.timezone.now", return_value=timezone.now() + timedelta(seconds=3)):
        assert api.get(api.api("export/status")).json()["recent_exports"] == []


# --- credentials --------------------------------------------------------------------------


def test_a_revoked_key_is_refused_at_the_next_poll(tenant, closed_job):
    key = make_api_key(tenant, name="leaving")
    client = SparkClient(tenant.slug, key)
    warm(client, client.api("export/status"))
    polled(client, client.api("export/status"), "from snapshots")
    apikey_revoke(api_key=ApiKey.objects.get(name="leaving"))
    assert client.get(client.api("export/status")).status_code == 401


def test_a_rotated_key_is_refused_at_the_next_poll(tenant):
    old = SparkClient(tenant.slug, make_api_key(tenant, name="ci"))
    warm(old, old.api("export/status"))
    apikey_create(tenant=tenant, name="ci", rotate=True)
    assert old.get(old.api("export/status")).status_code == 401


def test_a_withdrawn_permission_is_refused_at_the_next_poll(api, tenant):
    warm(api, api.api("export/status"))
    key = ApiKey.objects.get(tenant=tenant, name="ci-key")
    key.permissions = [Permission.IMPORTS]
    key.save()  # as the admin does
    assert api.get(api.api("export/status")).json()["code"] == "FORBIDDEN"


def test_a_snapshot_is_only_served_to_who_may_see_the_job(api, tenant, other_api, closed_job):
    url = f"export/{closed_job}/status"
    warm(api, api.api(url))
    colleague = SparkClient(tenant.slug, make_api_key(tenant, name="colleague"))
    supervisor = SparkClient(tenant.slug, make_api_key(tenant, name="boss", supervisor=True))
    for _ in range(2):
        assert colleague.get(colleague.api(url)).status_code == 404
        assert other_api.get(other_api.api(url)).status_code == 404
        assert other_api.get(api.api(url)).status_code == 403
        assert supervisor.get(supervisor.api(url)).status_code == 200
    assert colleague.get(colleague.api("export/status")).json()["recent_exports"] == []


# --- when snapshots step aside ------------------------------------------------------------


def test_no_cache_is_answered_from_the_database(api, closed_job):
    url = api.api(f"export/{closed_job}/status")
    warm(api, url)
    assert polled(api, url, "no snapshots", HTTP_CACHE_CONTROL="no-cache").status_code == 200


def test_polls_are_answered_from_the_database_while_redis_is_unreachable(api, closed_job, settings):
    url = api.api(f"export/{closed_job}/status")
    fresh = warm(api, url)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    for _ in range(2):
        response = polled(api, url, "no snapshots")
        assert response.status_code == 200
        assert without_timestamps(response.json()) == without_timestamps(fresh)


def test_snapshots_can_be_switched_off(api, closed_job, settings):
    settings.STATUS_SNAPSHOTS = False
    url = api.api(f"export/{closed_job}/status")
    warm(api, url)
    polled(api, url, "no snapshots")


# --- the tokens ---------------------------------------------------------------------------


def test_a_snapshot_tagged_before_a_change_is_never_served_after_it():
    snapshots.tokens_start(["scope-a"])
    before = tuple(snapshots.current_tokens(["scope-a"]).values())
    snapshots.store.put("key", before, "rows as read", born=time.monotonic())
    snapshots.scopes_changed("scope-a")
    after = tuple(snapshots.current_tokens(["scope-a"]).values())
    assert after != before
    assert snapshots.store.get("key", after) is None


def test_changes_in_a_transaction_are_announced_again_at_commit(django_capture_on_commit_callbacks):
    scopes = ["scope-b", "scope-e"]
    snapshots.tokens_start(scopes)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for scope in [*scopes, *scopes]:
            snapshots.scopes_changed(scope)
        during = snapshots.current_tokens(scopes)
    assert len(callbacks) == 1  # one announcement at commit, however many writes
    after = snapshots.current_tokens(scopes)
    assert all(after[scope] != during[scope] for scope in scopes)


def values(tokens: dict | None) -> dict | None:
    """The token values, without the run id of the Redis instance the mirror tags them with."""
    if tokens is None:
        return None
    return {scope: token and token.split("/", 1)[1] for scope, token in tokens.items()}


def test_the_mirror_sees_every_change_made_elsewhere_at_once(settings):
    other_process = redis.Redis.from_url(settings.REDIS_URL)
    key = snapshots.TOKEN_PREFIX + "scope-c"
    other_process.set(key, "v0")
    assert values(snapshots.current_tokens(["scope-c"])) == {"scope-c": "v0"}
    stale = 0
    for round_no in range(1, 300):
        other_process.set(key, f"v{round_no}")
        stale += values(snapshots.current_tokens(["scope-c"])) != {"scope-c": f"v{round_no}"}
    assert stale == 0
    other_process.flushdb()
    assert snapshots.current_tokens(["scope-c"]) == {"scope-c": None}


def test_tokens_are_tagged_with_the_ids_of_the_redis_that_holds_them(settings):
    server = redis.Redis.from_url(settings.REDIS_URL)
    run_id, replication_id = server.info("server")["run_id"], server.info("replication")["master_replid"]
    snapshots.tokens_start(["scope-h"])
    assert snapshots.current_tokens(["scope-h"])["scope-h"].startswith(f"{run_id}.{replication_id[:12]}/")


def test_the_mirror_forgets_everything_when_its_connection_drops(settings):
    other_process = redis.Redis.from_url(settings.REDIS_URL)
    key = snapshots.TOKEN_PREFIX + "scope-d"
    other_process.set(key, "before")
    assert values(snapshots.current_tokens(["scope-d"])) == {"scope-d": "before"}
    tracking = [client for client in other_process.client_list() if "t" in client["flags"]]
    for client in tracking:
        other_process.client_kill_filter(_id=client["id"])
    other_process.set(key, "after")  # the killed connection can't be told
    assert [snapshots.current_tokens(["scope-d"]) for _ in range(2)] == [None, None]  # the database answers
    later = time.monotonic() + token_store.REDIS_BACKOFF_SECONDS + 1
    with mock.patch("time.monotonic", return_value=later):
        assert values(snapshots.current_tokens(["scope-d"])) == {"scope-d": "after"}


def test_without_tracking_every_read_asks_redis(settings, monkeypatch):
    """A server (or proxy) that refuses CLIENT TRACKING: tokens are read on every request."""
    monkeypatch.setattr(token_store.TokenMirror, "TRACKING", ("CLIENT", "TRACKING", "REFUSED"))
    mirror = token_store.TokenMirror()
    other_process = redis.Redis.from_url(settings.REDIS_URL)
    key = snapshots.TOKEN_PREFIX + "scope-f"
    stale = 0
    for round_no in range(50):
        other_process.set(key, f"v{round_no}")
        stale += values(mirror.tokens(["scope-f"])) != {"scope-f": f"v{round_no}"}
    assert stale == 0 and not mirror._tracking


def test_the_store_is_bounded_by_weight_and_evicts_the_least_recently_used():
    store = snapshots.SnapshotStore(max_weight=10, owner_share=1)
    now = time.monotonic()
    store.put("a", ("t",), "A", weight=4, born=now)
    store.put("b", ("t",), "B", weight=4, born=now)
    assert store.get("a", ("t",)) == "A"  # now "b" is the least recently used
    store.put("c", ("t",), "C", weight=4, born=now)
    assert [store.get(key, ("t",)) for key in "abc"] == ["A", None, "C"]
    store.put("huge", ("t",), "H", weight=11, born=now)
    assert store.get("huge", ("t",)) is None and store.get("a", ("t",)) == "A"
    store.put("a", ("t",), "A2", weight=6, born=now)  # replacing an entry frees its old weight
    assert [store.get(key, ("t",)) for key in "ac"] == ["A2", "C"]


def test_a_snapshot_lives_no_longer_than_its_max_age(settings):
    store = snapshots.SnapshotStore()
    store.put("short", ("t",), "S", max_age=0.05, born=time.monotonic())
    settings.SNAPSHOT_MAX_AGE = 0.05
    store.put("capped", ("t",), "C", max_age=3600, born=time.monotonic())
    assert store.get("short", ("t",)) == "S" and store.get("capped", ("t",)) == "C"
    with mock.patch("time.monotonic", return_value=time.monotonic() + 0.06):
        assert store.get("short", ("t",)) is None and store.get("capped", ("t",)) is None


@pytest.mark.parametrize("options", ["socket_timeout=2", "decode_responses=True", "health_check_interval=30"])
def test_redis_url_options_are_honoured(api, closed_job, settings, options):
    settings.REDIS_URL = f"{settings.REDIS_URL}?{options}"
    url = api.api(f"export/{closed_job}/status")
    warm(api, url)
    polled(api, url, "from snapshots")


def test_a_hung_redis_costs_one_request_its_timeout_not_every_request(api, closed_job, settings):
    """A server that accepts connections and never answers: the first poll waits for the
    timeout and reads the database; the next ones leave Redis alone for a while."""
    attempts = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        def accept():
            while True:
                try:
                    attempts.append(server.accept()[0])
                except OSError:
                    return

        threading.Thread(target=accept, daemon=True).start()
        settings.REDIS_URL = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
        url = api.api(f"export/{closed_job}/status")
        for _ in range(5):
            assert polled(api, url, "no snapshots").status_code == 200
        assert len(attempts) == 1
        for accepted in attempts:
            accepted.close()


def test_writes_replace_tokens_even_where_snapshots_are_off(settings):
    """A worker started with STATUS_SNAPSHOTS=0 still tells the web processes what changed."""
    watcher = redis.Redis.from_url(settings.REDIS_URL)
    snapshots.tokens_start(["scope-g"])
    before = watcher.get(snapshots.TOKEN_PREFIX + "scope-g")
    settings.STATUS_SNAPSHOTS = False
    snapshots.scopes_changed("scope-g")
    assert watcher.get(snapshots.TOKEN_PREFIX + "scope-g") not in (None, before)


def test_a_snapshot_does_not_keep_the_request_that_built_it_alive(api, closed_job):
    url = api.api(f"export/{closed_job}/status")
    snapshots.store.clear()
    builders = []
    for _ in range(2):  # whichever of the two builds the snapshot (the worker's writes started the tokens)
        response = api.get(url)
        builders.append(weakref.ref(response.wsgi_request))
    del response
    gc.collect()
    assert [request() for request in builders] == [None, None]
    polled(api, url, "from snapshots")  # and the snapshot is still there


def test_unknown_scopes_are_not_mirrored():
    snapshots.current_tokens(["scope-known"])
    before = len(token_store._mirror._known)
    assert snapshots.current_tokens([f"scope-{n}" for n in range(200)]) == {f"scope-{n}": None for n in range(200)}
    assert len(token_store._mirror._known) == before
