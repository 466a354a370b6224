"""Sending deliveries: one endpoint at a time, in order, retried on a schedule.

An RQ job on the `webhooks` queue drains one endpoint (`endpoint_drain`): it locks the
endpoint's row (NOWAIT), sends the oldest pending delivery if it is due, records the attempt
and commits, and goes on. Holding the row while sending is what keeps an endpoint's deliveries
in order across workers: a second drain of the same endpoint finds it locked and leaves, and
the holder looks again for due deliveries after each commit, so one committed meanwhile is not
left behind. A delivery that is not due yet (a retry) holds back the ones after it; the drain
is queued again for its time (RQ's scheduler), and the sweep, run every minute by the reaper's
cron, queues any endpoint with due deliveries that no job is on the way for (Redis was down,
the scheduler is not running).
"""
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from exports.webhooks.addresses import AddressRefused, target_check
from exports.webhooks.models import AttemptOutcome, DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from exports.webhooks.signing import signature_header
from exports.webhooks.transport import post
from sparkexport import metrics, queue

logger = logging.getLogger("sparkexport.webhooks")

QUEUE = "webhooks"
DRAIN_JOB = "exports.webhooks.jobs.webhook_endpoint_drain_job"
DRAIN_BATCH = 20  # deliveries one RQ job sends before it queues the rest anew
EXCERPT_BYTES = 1024
SENT, BUSY, IDLE = "sent", "busy", "idle"


def endpoint_drain_enqueue(endpoint_id, at=None) -> None:
    """Queue the sending of an endpoint's due deliveries, now or at `at`. If Redis refuses,
    they stay pending for the sweep."""
    try:
        queue.enqueue_call(QUEUE, DRAIN_JOB, str(endpoint_id), timeout=DRAIN_BATCH * 10 + 60, at=at)
    except queue.QueueUnavailable:
        logger.warning("webhook deliveries of endpoint %s stay pending: the queue is unreachable", endpoint_id)


def endpoint_drain(endpoint_id) -> int:
    """Send the endpoint's due deliveries in order; answers how many attempts were made."""
    sent = 0
    for _ in range(2 * DRAIN_BATCH):
        outcome = _send_next(endpoint_id)
        if outcome == SENT:
            sent += 1
            if sent >= DRAIN_BATCH:
                endpoint_drain_enqueue(endpoint_id)
                break
        elif outcome == IDLE and _due_deliveries(timezone.now()).filter(endpoint_id=endpoint_id).exists():
            continue  # committed while this drain held the endpoint: another drain left it to this one
        elif outcome not in (BUSY, IDLE):
            endpoint_drain_enqueue(endpoint_id, at=outcome)
            break
        else:
            break
    return sent


def _send_next(endpoint_id):
    """SENT, BUSY (another drain holds the endpoint), IDLE (nothing pending), or the time the
    next delivery is due."""
    try:
        with transaction.atomic():
            endpoint = WebhookEndpoint.objects.select_for_update(nowait=True).filter(pk=endpoint_id, active=True).first()
            if endpoint is None:
                return IDLE
            head = endpoint.deliveries.filter(status=DeliveryStatus.PENDING).order_by("id").first()
            if head is None:
                return IDLE
            if head.next_attempt_at > timezone.now():
                return head.next_attempt_at
            delivery_attempt(endpoint, head)
            return SENT
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "55P03":  # lock_not_available: another drain holds it
            return BUSY
        raise


def delivery_attempt(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> WebhookAttempt:
    """POST the delivery once (its body as first recorded, a fresh signature) and record how it went."""
    at = timezone.now()
    body = bytes(delivery.body)
    try:
        target = target_check(endpoint.url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS)
    except AddressRefused as exc:
        attempt = WebhookAttempt(delivery=delivery, at=at, outcome=AttemptOutcome.REFUSED, error=f"{exc.code}: {exc.message}")
        where = "(refused)"
    else:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "sparkexport-webhooks/1",
            "Sparkexport-Event": delivery.event,
            "Sparkexport-Delivery": str(delivery.delivery_id),
            "Sparkexport-Signature": signature_header(endpoint.secret, body, int(time.time())),
        }
        answer = post(target, headers, body)
        attempt = WebhookAttempt(
            delivery=delivery, at=at, outcome=_outcome(answer), status_code=answer.status_code,
            latency_ms=answer.latency_ms, response_excerpt=answer.body[:EXCERPT_BYTES].decode("utf-8", "replace"),
            error=answer.error,
        )
        where = target.safe_url
    attempt.save()
    _delivery_advance(delivery, attempt)
    _observe(delivery, attempt, where)
    return attempt


def _outcome(answer) -> str:
    if answer.status_code is not None:
        return AttemptOutcome.DELIVERED if 200 <= answer.status_code < 300 else AttemptOutcome.HTTP_ERROR
    return AttemptOutcome.TIMEOUT if answer.timed_out else AttemptOutcome.CONNECTION_ERROR


def _delivery_advance(delivery: WebhookDelivery, attempt: WebhookAttempt) -> None:
    """Delivered; or due again after the next delay of its schedule; or failed, the schedule spent."""
    delivery.attempts += 1
    delays = settings.WEBHOOK_RETRY_DELAYS
    retry = delivery.attempts - delivery.round_start - 1
    if attempt.outcome == AttemptOutcome.DELIVERED:
        delivery.status, delivery.finished_at = DeliveryStatus.DELIVERED, attempt.at
    elif retry < len(delays):
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=delays[retry])
    else:
        delivery.status, delivery.finished_at = DeliveryStatus.FAILED, timezone.now()
    delivery.save(update_fields=["attempts", "status", "next_attempt_at", "finished_at"])


def _observe(delivery: WebhookDelivery, attempt: WebhookAttempt, where: str) -> None:
    metrics.WEBHOOK_ATTEMPTS.labels(delivery.event, attempt.outcome).inc()
    level = logging.INFO if attempt.outcome == AttemptOutcome.DELIVERED else logging.WARNING
    answer = attempt.status_code or attempt.error
    logger.log(
        level, "webhook %s %s attempt %d to %s: %s in %d ms, delivery %s", delivery.event, delivery.delivery_id,
        delivery.attempts, where, answer, attempt.latency_ms, delivery.status,
        extra={"event": "webhook_attempt", "delivery_id": str(delivery.delivery_id), "job_id": str(delivery.job_id),
               "webhook_event": delivery.event, "outcome": attempt.outcome, "status_code": attempt.status_code,
               "latency_ms": attempt.latency_ms, "delivery_status": delivery.status},
    )


def _due_deliveries(now):
    return WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__active=True)


def webhook_deliveries_sweep(now=None) -> int:
    """Queue a drain of every active endpoint with due pending deliveries (those whose job
    never reached Redis, or whose scheduled retry did not run); answers how many."""
    endpoint_ids = set(_due_deliveries(now or timezone.now()).values_list("endpoint_id", flat=True))
    for endpoint_id in endpoint_ids:
        endpoint_drain_enqueue(endpoint_id)
    return len(endpoint_ids)


def webhook_delivery_redeliver(delivery: WebhookDelivery) -> None:
    """Send a delivery again (same id, same body, a fresh signature), with a new retry schedule."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), finished_at=None, round_start=delivery.attempts
    )
    transaction.on_commit(lambda: endpoint_drain_enqueue(delivery.endpoint_id), robust=True)
