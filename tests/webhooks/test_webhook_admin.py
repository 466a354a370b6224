"""The admin: supervisors manage their tenants' endpoints only (another tenant's is a 404), the
secret is shown once, deliveries show their attempts, and "Redeliver" sends one again."""
import json

import pytest
from django.test import Client
from django.urls import reverse
from rq import SimpleWorker

from exports.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tenants.services import member_add
from tests.webhooks.conftest import endpoint_for, ended_export

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("private_networks")]


def logged_in(tenant, username) -> Client:
    client = Client()
    client.force_login(member_add(tenant=tenant, username=username, supervisor=True).user)
    return client


@pytest.fixture
def admin_a(tenant):
    return logged_in(tenant, "sue@acme.test")


@pytest.fixture
def admin_b(other_tenant):
    return logged_in(other_tenant, "bob@globex.test")


def test_a_supervisor_sees_and_manages_their_tenants_endpoints_only(tenant, other_tenant, admin_a, admin_b):
    mine, my_secret = endpoint_for(tenant, "http://127.0.0.1:9/acme")
    theirs, _ = endpoint_for(other_tenant, "http://127.0.0.1:9/globex")

    listing = admin_a.get(reverse("admin:exports_webhookendpoint_changelist")).content.decode()
    assert "/acme" in listing and "/globex" not in listing
    page = admin_a.get(reverse("admin:exports_webhookendpoint_change", args=[mine.pk]))
    assert page.status_code == 200
    assert my_secret not in page.content.decode() and my_secret[:8] in page.content.decode()
    assert admin_a.get(reverse("admin:exports_webhookendpoint_change", args=[theirs.pk])).status_code == 404
    assert admin_a.post(reverse("admin:exports_webhookendpoint_delete", args=[theirs.pk]), {"post": "yes"}).status_code == 404
    assert admin_b.post(reverse("admin:exports_webhookendpoint_delete", args=[theirs.pk]), {"post": "yes"}).status_code == 302
    assert list(WebhookEndpoint.objects.all()) == [mine]


def test_adding_shows_the_secret_once(tenant, other_tenant, admin_a):
    add = reverse("admin:exports_webhookendpoint_add")
    done = admin_a.post(add, {"tenant": tenant.pk, "url": "http://127.0.0.1:9/hook", "events": ["export.closed"]}, follow=True)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["export.closed"] and endpoint.tenant == tenant
    assert endpoint.secret in done.content.decode()  # the page after "Save"
    again = admin_a.get(reverse("admin:exports_webhookendpoint_change", args=[endpoint.pk])).content.decode()
    assert endpoint.secret not in again
    other = admin_a.post(add, {"tenant": other_tenant.pk, "url": "http://127.0.0.1:9/y", "events": ["export.closed"]})
    assert b"Select a valid choice" in other.content  # not a tenant of theirs


def test_a_refused_url_is_a_form_error(tenant, admin_a, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    page = admin_a.post(reverse("admin:exports_webhookendpoint_add"),
                        {"tenant": tenant.pk, "url": "https://169.254.169.254/", "events": ["export.closed"]})
    assert page.status_code == 200
    assert "not a public address" in page.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_deliveries_with_their_attempts_and_redeliver(tenant, other_tenant, admin_a, admin_b, receiver, webhooks_queue):
    endpoint, _ = endpoint_for(tenant, receiver.url("/hook", 500, 200))
    ended_export(tenant)
    SimpleWorker([webhooks_queue], connection=webhooks_queue.connection).work(burst=True)
    delivery = WebhookDelivery.objects.get()

    page = admin_a.get(reverse("admin:exports_webhookendpoint_change", args=[endpoint.pk])).content.decode()
    assert reverse("admin:exports_webhookdelivery_change", args=[delivery.pk]) in page
    detail = admin_a.get(reverse("admin:exports_webhookdelivery_change", args=[delivery.pk])).content.decode()
    assert "http_error" in detail and "answer 500" in detail and "Redeliver" in detail
    assert admin_b.get(reverse("admin:exports_webhookdelivery_change", args=[delivery.pk])).status_code == 404
    assert admin_b.post(reverse("admin:exports_webhookdelivery_redeliver", args=[delivery.pk])).status_code == 404

    assert admin_a.post(reverse("admin:exports_webhookdelivery_redeliver", args=[delivery.pk])).status_code == 302
    SimpleWorker([webhooks_queue], connection=webhooks_queue.connection).work(burst=True)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)
    first, second = receiver.at("/hook")
    assert first.body == second.body and json.loads(second.body)["id"] == str(delivery.delivery_id)
