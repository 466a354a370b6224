"""Managing a tenant's webhook endpoints (the commands and the admin call these)."""
import uuid

from django.conf import settings

from exports.webhooks.addresses import target_check
from exports.webhooks.models import SECRET_PREFIX_LENGTH, WEBHOOK_EVENTS, WebhookEndpoint
from exports.webhooks.signing import secret_new
from sparkexport.errors import InvalidRequest, NotFound


def webhook_events_check(events) -> list[str]:
    """The events asked for, in their canonical order; all of them when none is named."""
    unknown = sorted(set(events or ()) - set(WEBHOOK_EVENTS))
    if unknown:
        raise InvalidRequest(
            f"Unknown webhook event(s): {', '.join(unknown)}. Choose among {', '.join(WEBHOOK_EVENTS)}.",
            code="WEBHOOK_EVENT_UNKNOWN",
        )
    return [event for event in WEBHOOK_EVENTS if not events or event in events]


def webhook_endpoint_create(*, tenant, url: str, events=None, created_by: str = "") -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret, which is answered here once and never again. Its URL
    must be https to public addresses (docs/security.md), checked now and at each delivery."""
    target_check(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS)
    secret = secret_new()
    endpoint = WebhookEndpoint.objects.create(
        tenant=tenant, url=url, events=webhook_events_check(events), secret=secret,
        secret_prefix=secret[:SECRET_PREFIX_LENGTH], created_by=created_by,
    )
    return endpoint, secret


def webhook_endpoint_get(*, tenant, endpoint_id) -> WebhookEndpoint:
    """The tenant's endpoint with this id: WEBHOOK_NOT_FOUND for another tenant's, as for none."""
    try:
        return WebhookEndpoint.objects.get(tenant=tenant, pk=uuid.UUID(str(endpoint_id)))
    except (ValueError, WebhookEndpoint.DoesNotExist):
        raise NotFound(f"Tenant '{tenant.slug}' has no webhook endpoint {endpoint_id}.", code="WEBHOOK_NOT_FOUND") from None


def webhook_endpoint_remove(*, tenant, endpoint_id) -> WebhookEndpoint:
    """Delete the endpoint, with its deliveries and their attempts."""
    endpoint = webhook_endpoint_get(tenant=tenant, endpoint_id=endpoint_id)
    endpoint.delete()
    return endpoint


def webhook_endpoints(tenant) -> list[WebhookEndpoint]:
    """The tenant's endpoints, oldest first."""
    return list(WebhookEndpoint.objects.filter(tenant=tenant).order_by("created_at"))
