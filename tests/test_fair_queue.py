"""Tenant-fair order of waiting jobs, on the real test Redis."""
import django_rq
import pytest

from sparkexport import queue
from sparkexport.fair_queue import fair_place, owners_key


def noop(job_id):
    pass


@pytest.fixture
def exports_queue(redis_queue, settings):
    settings.QUEUE_TENANT_FAIR = True
    return django_rq.get_queue("exports")


def post(owner: str, n: int) -> str:
    job_id = f"{owner}{n}"
    queue.enqueue("exports", noop, job_id=job_id, timeout=60, owner=owner)
    return job_id


def test_a_backlog_is_interleaved_with_other_tenants_jobs_as_they_arrive(exports_queue):
    for n in range(1, 5):
        post("a", n)
    post("b", 1)
    post("c", 1)
    post("b", 2)
    post("d", 1)
    assert exports_queue.job_ids == ["a1", "b1", "c1", "d1", "a2", "b2", "a3", "a4"]


def test_without_the_setting_jobs_wait_in_arrival_order(exports_queue, settings):
    settings.QUEUE_TENANT_FAIR = False
    for owner, n in (("a", 1), ("a", 2), ("b", 1)):
        post(owner, n)
    assert exports_queue.job_ids == ["a1", "a2", "b1"]


def test_a_job_taken_meanwhile_and_jobs_without_owner_are_left_alone(exports_queue):
    post("a", 1)
    post("a", 2)
    exports_queue.enqueue(noop, "cron", job_id="cron")  # the reaper's cron job: no tenant
    assert not fair_place(exports_queue.connection, exports_queue.key, "gone", "b")
    post("b", 1)
    assert exports_queue.job_ids == ["a1", "b1", "a2", "cron"]  # the cron job keeps its place


def test_the_owners_of_jobs_long_gone_are_forgotten(exports_queue):
    connection = exports_queue.connection
    connection.hset(owners_key(exports_queue.key), mapping={f"old{n}": "a" for n in range(1100)})
    post("a", 1)
    post("b", 1)
    assert connection.hlen(owners_key(exports_queue.key)) == 2
