"""A tenant's webhook endpoints, the deliveries of job events to them, and each attempt."""
import uuid

from django.db import models
from django.utils import timezone

from tenants.models import Tenant

# Each job kind's terminal statuses, as events: `<kind>.<status>`.
WEBHOOK_EVENTS = tuple(
    f"{kind}.{status}" for kind in ("export", "import") for status in ("closed", "failed", "closed_by_timeout", "cancelled")
)
SECRET_PREFIX_LENGTH = 8


class WebhookEndpoint(models.Model):
    """A URL of a tenant's that is told of the events it subscribed to; its secret signs them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    # Signing needs the secret itself (as GitHub's and Stripe's do); it is shown once, at
    # creation, and only its prefix afterwards.
    secret = models.CharField(max_length=100, editable=False)
    secret_prefix = models.CharField(max_length=SECRET_PREFIX_LENGTH, editable=False)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "created_at"]
        indexes = [models.Index(fields=["tenant", "active"], name="webhook_endpoint_tenant")]

    def __str__(self):
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One event for one endpoint: its body as first sent, and where its sending stands.

    `id` orders an endpoint's deliveries (the order of their events); `delivery_id` is the
    public one, in the body and the Sparkexport-Delivery header.
    """

    id = models.BigAutoField(primary_key=True)
    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)
    job_kind = models.CharField(max_length=8)
    job_id = models.UUIDField()
    body = models.BinaryField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # The attempts made before the current round of retries (a redeliver starts a new one).
    round_start = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # An endpoint's next delivery to send, in order.
            models.Index(fields=["endpoint", "id"], condition=models.Q(status="pending"), name="webhook_delivery_queue"),
            # The sweep: pending deliveries that are due.
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="webhook_delivery_due"),
            models.Index(fields=["created_at"], name="webhook_delivery_created"),
            models.Index(fields=["job_id"], name="webhook_delivery_job"),
        ]

    def __str__(self):
        return f"{self.event} {self.delivery_id}"


class AttemptOutcome(models.TextChoices):
    DELIVERED = "delivered"
    HTTP_ERROR = "http_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    REFUSED = "refused"  # the address is not allowed (docs/security.md)


class WebhookAttempt(models.Model):
    """One POST of a delivery: when, what came back, how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows")
    at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=20, choices=AttemptOutcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery", "at"]

    def __str__(self):
        return f"{self.outcome} {self.status_code or ''}".strip()
