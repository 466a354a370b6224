"""Deliveries (with their attempts) go with the jobs' retention; pending ones stay."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exports.purge import exports_purge
from exports.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from tests.webhooks.conftest import endpoint_for

pytestmark = pytest.mark.django_db


def delivery(endpoint, status, age_days):
    made = WebhookDelivery.objects.create(
        tenant=endpoint.tenant, endpoint=endpoint, event="export.closed", job_kind="export",
        job_id="00000000-0000-0000-0000-000000000001", body=b"{}", status=status,
        created_at=timezone.now() - timedelta(days=age_days),
    )
    WebhookAttempt.objects.create(delivery=made, outcome="delivered", status_code=200)
    return made


def test_purge_deletes_old_finished_deliveries_only(tenant, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    endpoint, _ = endpoint_for(tenant, "http://127.0.0.1:9/hook")
    old_delivered = delivery(endpoint, DeliveryStatus.DELIVERED, 10)
    old_failed = delivery(endpoint, DeliveryStatus.FAILED, 10)
    old_pending = delivery(endpoint, DeliveryStatus.PENDING, 10)
    recent = delivery(endpoint, DeliveryStatus.DELIVERED, 1)

    assert exports_purge(older_than=timedelta(days=7), apply=False)["webhook_deliveries"] == 2
    assert WebhookDelivery.objects.count() == 4
    exports_purge(older_than=timedelta(days=7), apply=True)

    assert set(WebhookDelivery.objects.all()) == {old_pending, recent}
    assert not WebhookAttempt.objects.filter(delivery__in=[old_delivered, old_failed]).exists()
