"""Sending: in event order per endpoint (across concurrent drains too), retried after an error
answer or a timeout with the same id and body, failed after the last attempt; bounded reads."""
import json
import threading
import time
import types

import pytest
from django.db import connection

from exports.webhooks import transport
from exports.webhooks.delivery import endpoint_drain
from exports.webhooks.models import AttemptOutcome, DeliveryStatus, WebhookDelivery
from sparkexport import metrics
from tests.reliability.conftest import wait_for
from tests.webhooks.conftest import endpoint_for, ended_export

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("private_networks", "webhooks_queue")]


def delivery_ids(received) -> list[str]:
    return [item.headers["Sparkexport-Delivery"] for item in received]


def deliveries_in_order(endpoint) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("id"))


def drain_when_due(endpoint) -> None:
    """Wait for the endpoint's next retry to be due, then send (what the scheduled job does)."""
    pending = WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).order_by("id").first()
    wait_for(lambda: time.time() >= pending.next_attempt_at.timestamp(), 30, message="the retry to be due")
    endpoint_drain(endpoint.pk)


def test_a_retry_holds_back_the_later_deliveries_of_its_endpoint(tenant, receiver):
    endpoint, _ = endpoint_for(tenant, receiver.url("/ordered", 500, 200))
    for _ in range(3):
        ended_export(tenant)
    first, second, third = deliveries_in_order(endpoint)

    endpoint_drain(endpoint.pk)
    assert delivery_ids(receiver.at("/ordered")) == [str(first.delivery_id)]  # 500: the others wait
    first.refresh_from_db()
    assert (first.status, first.attempts) == (DeliveryStatus.PENDING, 1)

    drain_when_due(endpoint)
    received = receiver.at("/ordered")
    assert delivery_ids(received) == [str(d.delivery_id) for d in (first, first, second, third)]
    assert received[0].body == received[1].body == bytes(first.body)  # a retry is the same delivery
    assert [d.status for d in deliveries_in_order(endpoint)] == [DeliveryStatus.DELIVERED] * 3


def test_two_drains_at_once_send_each_delivery_once_in_order(tenant, receiver):
    endpoint, _ = endpoint_for(tenant, receiver.url("/busy", "slow"))
    for _ in range(6):
        ended_export(tenant)

    def drain():
        try:
            endpoint_drain(endpoint.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert delivery_ids(receiver.at("/busy")) == [str(d.delivery_id) for d in deliveries_in_order(endpoint)]


def test_error_answers_are_retried_then_the_delivery_fails(tenant, receiver, settings):
    settings.WEBHOOK_RETRY_DELAYS = (0, 0)
    endpoint, _ = endpoint_for(tenant, receiver.url("/broken", 500))
    before = metrics.WEBHOOK_ATTEMPTS.labels("export.closed", AttemptOutcome.HTTP_ERROR)._value.get()
    ended_export(tenant)

    endpoint_drain(endpoint.pk)

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 3)
    attempts = list(delivery.attempt_rows.order_by("at"))
    assert [(a.outcome, a.status_code, a.response_excerpt) for a in attempts] == [
        (AttemptOutcome.HTTP_ERROR, 500, "answer 500")
    ] * 3
    assert len({json.loads(item.body)["id"] for item in receiver.at("/broken")}) == 1
    assert metrics.WEBHOOK_ATTEMPTS.labels("export.closed", AttemptOutcome.HTTP_ERROR)._value.get() == before + 3


def test_a_timeout_is_retried_and_the_retry_delivers(tenant, receiver, settings):
    settings.WEBHOOK_RETRY_DELAYS = (0,)
    endpoint, _ = endpoint_for(tenant, receiver.url("/late", "hang", 200))
    ended_export(tenant)

    endpoint_drain(endpoint.pk)

    delivery = WebhookDelivery.objects.get()
    timeout, delivered = delivery.attempt_rows.order_by("at")
    assert timeout.outcome == AttemptOutcome.TIMEOUT and timeout.status_code is None
    # 5 s, connecting and answering together; the receiver would hang until the test ends.
    assert 4500 <= timeout.latency_ms < 30000, timeout.latency_ms
    assert (delivered.outcome, delivered.status_code) == (AttemptOutcome.DELIVERED, 200)
    assert delivery.status == DeliveryStatus.DELIVERED


def test_the_deadline_is_marked_before_the_connection_is_cut():
    """The cut wakes the sending thread at once, and it reads the mark to tell a timeout from a
    receiver that hung up: the mark must be there first (a race seen in CI said "connection
    error" for a timeout)."""
    marked_when_cut = []

    class Socket:
        def shutdown(self, how):
            marked_when_cut.append(connection.deadline_passed)

    connection = types.SimpleNamespace(sock=Socket(), deadline_passed=False)
    transport._cut_off(connection)
    assert marked_when_cut == [True]


def test_redirects_are_not_followed_and_answers_are_read_in_part(tenant, receiver, settings):
    settings.WEBHOOK_RETRY_DELAYS = ()
    moved, _ = endpoint_for(tenant, receiver.url("/moved", 302))
    big, _ = endpoint_for(tenant, receiver.url("/big", "big"))
    ended_export(tenant)

    endpoint_drain(moved.pk)
    endpoint_drain(big.pk)

    redirect = WebhookDelivery.objects.get(endpoint=moved)
    assert redirect.status == DeliveryStatus.FAILED
    assert redirect.attempt_rows.get().outcome == AttemptOutcome.HTTP_ERROR
    attempt = WebhookDelivery.objects.get(endpoint=big).attempt_rows.get()
    assert attempt.outcome == AttemptOutcome.DELIVERED
    assert attempt.response_excerpt == "x" * 1024
