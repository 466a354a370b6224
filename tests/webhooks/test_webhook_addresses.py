"""Server-side request forgery: https to public addresses only, checked when an endpoint is made
and again at each delivery, connecting to the address checked (no second lookup)."""
import pytest
from django.core.management import CommandError, call_command

from exports.webhooks.addresses import AddressRefused, Target, address_is_public, target_check
from exports.webhooks.delivery import endpoint_drain
from exports.webhooks.models import AttemptOutcome, WebhookDelivery, WebhookEndpoint
from exports.webhooks.services import webhook_endpoint_create
from exports.webhooks.transport import post
from tests.webhooks.conftest import endpoint_for, ended_export

REFUSED_URLS = {
    "https://127.0.0.1/hook": "WEBHOOK_ADDRESS_NOT_PUBLIC",
    "https://10.1.2.3/hook": "WEBHOOK_ADDRESS_NOT_PUBLIC",
    "https://169.254.169.254/latest/meta-data/": "WEBHOOK_ADDRESS_NOT_PUBLIC",
    "https://[::1]/hook": "WEBHOOK_ADDRESS_NOT_PUBLIC",
    "https://[::ffff:127.0.0.1]/hook": "WEBHOOK_ADDRESS_NOT_PUBLIC",
    "https://localhost/hook": "WEBHOOK_ADDRESS_NOT_PUBLIC",  # a name that resolves to loopback
    "https://192.168.0.10/hook": "WEBHOOK_ADDRESS_NOT_PUBLIC",
    "https://172.16.5.4/hook": "WEBHOOK_ADDRESS_NOT_PUBLIC",
    "https://[fd00::1]/hook": "WEBHOOK_ADDRESS_NOT_PUBLIC",
    "https://[fe80::1]/hook": "WEBHOOK_ADDRESS_NOT_PUBLIC",
    "https://0.0.0.0/hook": "WEBHOOK_ADDRESS_NOT_PUBLIC",
    "http://203.0.113.7/hook": "WEBHOOK_URL_NOT_HTTPS",
    "ftp://example.com/hook": "WEBHOOK_URL_NOT_HTTPS",
    "https://user:pw@8.8.8.8/hook": "WEBHOOK_URL_INVALID",
    "not a url": "WEBHOOK_URL_INVALID",
}


@pytest.mark.parametrize("address, public", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("::ffff:8.8.8.8", True),
    ("127.0.0.1", False), ("10.0.0.1", False), ("172.31.255.255", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False), ("240.0.0.1", False),
    ("::1", False), ("::", False), ("fc00::1", False), ("fe80::1", False), ("ff02::1", False), ("::ffff:10.0.0.1", False),
])
def test_which_addresses_are_public(address, public):
    assert address_is_public(address) is public


@pytest.mark.parametrize("url, code", REFUSED_URLS.items())
def test_refused_at_creation_with_a_stable_code(tenant, url, code):
    with pytest.raises(AddressRefused) as refused:
        webhook_endpoint_create(tenant=tenant, url=url)
    assert refused.value.code == code
    assert WebhookEndpoint.objects.count() == 0


def test_the_command_says_why(tenant):
    with pytest.raises(CommandError, match="WEBHOOK_ADDRESS_NOT_PUBLIC: .*'169.254.169.254'.* not a public address"):
        call_command("webhook_add", tenant.slug, "https://169.254.169.254/")


def test_private_networks_allowed_lifts_the_check_and_allows_http(tenant, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    endpoint, _ = webhook_endpoint_create(tenant=tenant, url="http://127.0.0.1:9/hook")
    assert endpoint.url == "http://127.0.0.1:9/hook"


@pytest.mark.django_db(transaction=True)
def test_refused_again_at_delivery(tenant, receiver, settings, webhooks_queue):
    """Made while allowed, sent when no longer: a name resolving to loopback is refused at each
    delivery, and nothing reaches the receiver."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOK_RETRY_DELAYS = (0,)
    port = receiver.base_url.rsplit(":", 1)[1]
    receiver.url("/hook")
    by_name, _ = endpoint_for(tenant, f"https://localhost:{port}/hook")
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    ended_export(tenant)

    endpoint_drain(by_name.pk)

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    attempts = list(delivery.attempt_rows.all())
    assert [a.outcome for a in attempts] == [AttemptOutcome.REFUSED] * 2
    assert attempts[0].error.startswith("WEBHOOK_ADDRESS_NOT_PUBLIC: ")
    assert receiver.received == []


def test_the_connection_goes_to_the_checked_address_not_a_new_lookup(receiver):
    """The host name is only the Host header (and TLS's name): the address is the one checked."""
    receiver.url("/pinned")
    port = int(receiver.base_url.rsplit(":", 1)[1])
    target = Target("http", "rebound.invalid", port, "/pinned", "127.0.0.1")  # .invalid never resolves

    answer = post(target, {"Content-Type": "application/json"}, b"{}")

    assert answer.status_code == 200
    assert receiver.at("/pinned")[0].headers["Host"] == f"rebound.invalid:{port}"


def test_target_check_answers_the_address_it_checked(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    target = target_check("http://localhost:8080/a/b?token=secret", allow_private=True)
    assert target.address in ("127.0.0.1", "::1")
    assert (target.host, target.port, target.path) == ("localhost", 8080, "/a/b?token=secret")
    assert target.safe_url == "http://localhost:8080/a/b"  # what logs show: no query string
