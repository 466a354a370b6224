"""Each job end, of both kinds, reaches the subscribed endpoints as a signed POST whose `data`
is the job's status document; recorded with the transition (an outbox), so a rolled-back end
sends nothing and a Redis outage loses nothing."""
import json

import pytest
from django.db import transaction
from django.utils import timezone
from rq import SimpleWorker

from exports.lifecycle import job_cancel, job_close, job_fail, job_time_out
from exports.models import ExportJob, ImportJob, JobStatus
from exports.webhooks import events
from exports.webhooks.delivery import webhook_deliveries_sweep
from exports.webhooks.models import WEBHOOK_EVENTS, DeliveryStatus, WebhookDelivery
from tenants.callers import Caller
from tenants.models import ApiKey
from tests.conftest import SparkClient
from tests.factories import make_api_key
from tests.webhooks.conftest import docs_verifier, endpoint_for

pytestmark = pytest.mark.usefixtures("private_networks")


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = "http://testserver"  # the test client's host, so links compare equal


@pytest.fixture
def supervisor_api(tenant):
    return SparkClient(tenant.slug, make_api_key(tenant, name="boss-key", supervisor=True))


def running_job(model, tenant, supervisor_api):
    """A job in progress, created by the supervisor's key (so its GET status can be compared)."""
    key = ApiKey.objects.get(tenant=tenant, name="boss-key")
    fields = {"tenant": tenant, "status": JobStatus.IN_PROGRESS, "created_by": "boss-key", "created_by_key": key,
              "created_by_credential": f"key:{key.pk}", "started_at": timezone.now()}
    if model is ExportJob:
        return ExportJob.objects.create(**fields, inputs={"folders": ["pricing"]}, file_filter="migrate", version_filter="all")
    return ImportJob.objects.create(**fields, services_modify=[{"service_uri_source": "pricing/quote"}], outputs={})


def end(model, job, status: str) -> None:
    if status == JobStatus.CLOSED:
        job_close(model, job.pk)
    elif status == JobStatus.FAILED:
        job_fail(model, job.pk, "INTERNAL_ERROR", "It broke.")
    elif status == JobStatus.CLOSED_BY_TIMEOUT:
        job_time_out(model, job.pk, 60)
    else:
        job_cancel(job, caller=Caller(tenant=job.tenant, label="sue", is_supervisor=True))


def run_webhooks_queue(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def without_moment(document: dict) -> dict:
    return {key: value for key, value in document.items() if key != "response_timestamp"}


@pytest.mark.django_db(transaction=True)
def test_each_job_end_is_delivered_signed_with_its_status_document(tenant, supervisor_api, receiver, webhooks_queue):
    endpoint, secret = endpoint_for(tenant, receiver.url("/hook"))
    assert endpoint.events == list(WEBHOOK_EVENTS)
    jobs = {}
    for event in WEBHOOK_EVENTS:
        kind, status = event.split(".")
        model = ExportJob if kind == "export" else ImportJob
        jobs[event] = running_job(model, tenant, supervisor_api)
        end(model, jobs[event], status)

    run_webhooks_queue(webhooks_queue)

    verify = docs_verifier()
    received = receiver.at("/hook")
    assert [item.headers["Sparkexport-Event"] for item in received] == list(WEBHOOK_EVENTS)  # in event order
    for item in received:
        body = json.loads(item.body)
        event = item.headers["Sparkexport-Event"]
        job = jobs[event]
        assert verify(secret, item.body, item.headers["Sparkexport-Signature"])
        assert not verify(secret, item.body + b" ", item.headers["Sparkexport-Signature"])
        assert not verify("whsec_another", item.body, item.headers["Sparkexport-Signature"])
        assert item.headers["Content-Type"] == "application/json"
        assert item.headers["Sparkexport-Delivery"] == body["id"]
        assert body["event"] == event and body["tenant"] == tenant.slug
        status = supervisor_api.get(supervisor_api.api(f"{job.kind}/{job.pk}/status")).json()
        assert without_moment(body["data"]) == without_moment(status), event
        assert status["status"] == event.split(".")[1]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_gets_its_events_only_and_another_tenant_none(
    tenant, other_tenant, supervisor_api, receiver, webhooks_queue
):
    endpoint_for(tenant, receiver.url("/failures"), events=["export.failed"])
    endpoint_for(other_tenant, receiver.url("/globex"))
    closed, failed = (running_job(ExportJob, tenant, supervisor_api) for _ in range(2))
    job_close(ExportJob, closed.pk)
    job_fail(ExportJob, failed.pk, "INTERNAL_ERROR", "It broke.")

    run_webhooks_queue(webhooks_queue)

    assert [json.loads(item.body)["data"]["id"] for item in receiver.at("/failures")] == [str(failed.pk)]
    assert receiver.at("/globex") == []


@pytest.mark.django_db(transaction=True)
def test_an_end_rolled_back_sends_nothing(tenant, supervisor_api, receiver, webhooks_queue):
    endpoint_for(tenant, receiver.url("/hook"))
    job = running_job(ImportJob, tenant, supervisor_api)
    with pytest.raises(RuntimeError), transaction.atomic():
        job_close(ImportJob, job.pk)  # an import closes inside its own transaction, which fails after
        raise RuntimeError("the import's transaction is undone")

    run_webhooks_queue(webhooks_queue)

    assert WebhookDelivery.objects.count() == 0
    assert receiver.received == []


@pytest.mark.django_db(transaction=True)
def test_redis_down_at_the_end_loses_nothing_the_sweep_queues_it(
    tenant, supervisor_api, receiver, webhooks_queue, settings
):
    endpoint_for(tenant, receiver.url("/hook"))
    job = running_job(ExportJob, tenant, supervisor_api)
    reachable = settings.RQ_QUEUES
    settings.RQ_QUEUES = {**reachable, "webhooks": {**reachable["webhooks"], "URL": "redis://127.0.0.1:1/7"}}

    assert job_close(ExportJob, job.pk)  # the job's outcome does not depend on the queue

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert webhooks_queue.count == 0
    settings.RQ_QUEUES = reachable
    assert webhook_deliveries_sweep() == 1
    run_webhooks_queue(webhooks_queue)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert len(receiver.at("/hook")) == 1


@pytest.mark.django_db(transaction=True)
def test_a_delivery_that_cannot_be_recorded_leaves_the_end_as_it_is(tenant, supervisor_api, receiver, monkeypatch):
    endpoint_for(tenant, receiver.url("/hook"))
    job = running_job(ExportJob, tenant, supervisor_api)

    def broken(job):
        raise RuntimeError("a status document that cannot be built")

    monkeypatch.setattr(events, "job_status_document", broken)
    assert job_close(ExportJob, job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.CLOSED
    assert WebhookDelivery.objects.count() == 0
