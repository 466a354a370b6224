"""A job's end, as webhook deliveries: recorded in the transaction that ends the job (an
outbox), queued for sending once it commits. If Redis is down then, the deliveries stay
pending and the sweep (exports/webhooks/delivery.py) queues them later: nothing is lost, and
the job's outcome never waits on a receiver."""
import json
import logging

from django.db import transaction
from django.db.models import Subquery
from django.utils import timezone

from exports.job_documents import iso_utc, job_status_document
from exports.webhooks.delivery import endpoint_drain_enqueue
from exports.webhooks.models import WebhookDelivery, WebhookEndpoint

logger = logging.getLogger("sparkexport.webhooks")


def subscribed_endpoints(model, job_id, event: str) -> list[WebhookEndpoint]:
    """The active endpoints of the job's tenant that asked for `event` (one query)."""
    tenant = Subquery(model.objects.filter(pk=job_id).values("tenant_id")[:1])
    endpoints = WebhookEndpoint.objects.filter(tenant_id=tenant, active=True).order_by("created_at")
    return [endpoint for endpoint in endpoints if event in endpoint.events]


def webhook_body(*, delivery_id, event: str, created, tenant_slug: str, data: dict) -> bytes:
    return json.dumps(
        {"id": str(delivery_id), "event": event, "created": iso_utc(created), "tenant": tenant_slug, "data": data},
        separators=(",", ":"),
    ).encode()


def job_event_record(model, job_id, status: str) -> None:
    """`job_id` (of `model`) has just moved to terminal `status`, in the current transaction:
    a delivery for each endpoint of its tenant subscribed to the event, queued on commit. A
    failure here is logged and leaves the job's end as it is (in its own savepoint)."""
    event = f"{model.kind}.{status}"
    endpoints = subscribed_endpoints(model, job_id, event)
    if not endpoints:
        return
    try:
        with transaction.atomic():
            _deliveries_create(model, job_id, event, endpoints)
    except Exception:
        logger.exception("%s %s: its %s webhook deliveries could not be recorded", model.kind, job_id, event)
        return
    endpoint_ids = [str(endpoint.pk) for endpoint in endpoints]
    transaction.on_commit(lambda: _queue_after_commit(endpoint_ids), robust=True)


def _deliveries_create(model, job_id, event: str, endpoints) -> None:
    job = model.objects.select_related("tenant").get(pk=job_id)
    data = job_status_document(job)
    now = timezone.now()
    deliveries = []
    for endpoint in endpoints:
        delivery = WebhookDelivery(tenant_id=job.tenant_id, endpoint=endpoint, event=event, job_kind=model.kind,
                                   job_id=job.pk, created_at=now, next_attempt_at=now)
        delivery.body = webhook_body(delivery_id=delivery.delivery_id, event=event, created=now,
                                     tenant_slug=job.tenant.slug, data=data)
        deliveries.append(delivery)
    WebhookDelivery.objects.bulk_create(deliveries)


def _queue_after_commit(endpoint_ids: list[str]) -> None:
    for endpoint_id in endpoint_ids:
        endpoint_drain_enqueue(endpoint_id)
