"""A real `rqworker ... webhooks --with-scheduler` process: a receiver that never answers holds
the worker for the 5 s timeout only, and retries come back through RQ's scheduler."""
import pytest

from exports.webhooks.models import AttemptOutcome, DeliveryStatus, WebhookDelivery
from tests.reliability.conftest import processes, wait_for  # noqa: F401  fixture
from tests.webhooks.conftest import endpoint_for, ended_export

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.usefixtures("private_networks")]


def test_a_silent_receiver_does_not_hold_the_worker_and_retries_are_scheduled(
    tenant, receiver, processes, webhooks_queue  # noqa: F811
):
    silent, _ = endpoint_for(tenant, receiver.url("/silent", "hang"))
    healthy, _ = endpoint_for(tenant, receiver.url("/healthy", 200))
    flaky, _ = endpoint_for(tenant, receiver.url("/flaky", 500, 200))
    processes.worker(webhooks=True, WEBHOOK_ALLOW_PRIVATE_NETWORKS="1", WEBHOOK_RETRY_DELAYS="1")  # one worker for all three

    ended_export(tenant)  # queues the three endpoints' drains, the silent one first

    wait_for(lambda: receiver.at("/silent"), 60, message="the silent receiver to be called")
    wait_for(lambda: receiver.at("/healthy"), 60, message="the healthy receiver to be called")
    held = receiver.at("/healthy")[0].at - receiver.at("/silent")[0].at
    assert 4.5 <= held < 10, f"the worker was held {held:.1f} s by a receiver that never answers"

    def finished(endpoint):
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
        return delivery if delivery.status != DeliveryStatus.PENDING else None

    retried = wait_for(lambda: finished(flaky), 60, message="the flaky delivery's scheduled retry")
    assert (retried.status, retried.attempts) == (DeliveryStatus.DELIVERED, 2)
    given_up = wait_for(lambda: finished(silent), 60, message="the silent delivery's last attempt")
    assert (given_up.status, given_up.attempts) == (DeliveryStatus.FAILED, 2)
    for attempt in given_up.attempt_rows.all():
        assert attempt.outcome == AttemptOutcome.TIMEOUT and attempt.latency_ms < 8000
    assert finished(healthy).status == DeliveryStatus.DELIVERED
