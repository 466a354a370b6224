"""webhook_add / webhook_list / webhook_remove: JSON for scripts, the secret printed once."""
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from exports.webhooks.models import WEBHOOK_EVENTS, WebhookEndpoint

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_list_remove(tenant, other_tenant, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    added = json.loads(run("webhook_add", tenant.slug, "http://127.0.0.1:9/hook", "--event", "export.closed",
                           "--event", "import.failed", "--json"))
    assert set(added) >= {"id", "url", "events", "secret"}
    assert added["url"] == "http://127.0.0.1:9/hook"
    assert added["events"] == ["export.closed", "import.failed"]
    assert added["secret"].startswith("whsec_") and len(added["secret"]) > 40
    everything = json.loads(run("webhook_add", tenant.slug, "http://127.0.0.1:9/all", "--json"))
    assert everything["events"] == list(WEBHOOK_EVENTS)

    listed = run("webhook_list", tenant.slug, "--json")
    assert added["secret"] not in listed and everything["secret"] not in listed
    endpoints = json.loads(listed)["endpoints"]
    assert [item["id"] for item in endpoints] == [added["id"], everything["id"]]
    assert endpoints[0]["secret_prefix"] == added["secret"][:8]
    assert json.loads(run("webhook_list", other_tenant.slug, "--json"))["endpoints"] == []

    with pytest.raises(CommandError, match="WEBHOOK_NOT_FOUND"):
        run("webhook_remove", other_tenant.slug, added["id"])  # another tenant's id: as if none
    assert "Removed webhook endpoint" in run("webhook_remove", tenant.slug, added["id"])
    assert list(WebhookEndpoint.objects.values_list("pk", flat=True)) == [WebhookEndpoint.objects.get().pk]


def test_plain_output_shows_the_secret_once_with_a_warning(tenant, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    printed = run("webhook_add", tenant.slug, "http://127.0.0.1:9/hook")
    secret = WebhookEndpoint.objects.get().secret
    assert secret in printed and "not shown again" in printed
    assert secret not in run("webhook_list", tenant.slug)


@pytest.mark.parametrize("args, message", [
    (("webhook_add", "nobody", "https://example.com/"), "Tenant .nobody. does not exist"),
    (("webhook_add", "acme", "https://8.8.8.8/", "--event", "export.done"), "WEBHOOK_EVENT_UNKNOWN: .*export.done"),
    (("webhook_list", "nobody"), "Tenant .nobody. does not exist"),
    (("webhook_remove", "acme", "not-an-id"), "WEBHOOK_NOT_FOUND"),
])
def test_clear_errors(tenant, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
