"""Webhook endpoints and their deliveries in the admin, for supervisors of their tenants only:
an endpoint's secret is shown once, when it is added; each delivery shows its attempts and can
be sent again ("Redeliver": a new attempt of the same delivery, same id and body)."""
from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from exports.webhooks.delivery import webhook_delivery_redeliver
from exports.webhooks.models import WEBHOOK_EVENTS, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from exports.webhooks.services import webhook_endpoint_create
from tenants.admin.buttons import ObjectButton, ObjectButtons
from tenants.admin.display import code, html_table, or_empty, short_datetime
from tenants.admin_scope import ServiceAddMixin, TenantChoiceForm, TenantScopedAdmin

RECENT_DELIVERIES = 50


class WebhookEndpointForm(TenantChoiceForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="https:// to a public address.")
    events = forms.MultipleChoiceField(
        choices=[(event, event) for event in WEBHOOK_EVENTS], initial=list(WEBHOOK_EVENTS),
        widget=forms.CheckboxSelectMultiple,
    )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceAddMixin, TenantScopedAdmin):
    allow_add = True
    allow_delete = True
    add_form = WebhookEndpointForm
    add_help = "The signing secret is shown once, on the next page. Store it before leaving it."
    list_display = ("url", "tenant", "event_list", "active", "secret_start", "created")
    list_filter = (("tenant", admin.RelatedOnlyFieldListFilter), "active")
    list_select_related = ("tenant",)
    fields = ("url", "tenant", "event_list", "active", "secret_start", "created_by", "created_at", "deliveries")
    readonly_fields = fields

    @admin.display(description="events")
    def event_list(self, endpoint):
        return or_empty(", ".join(endpoint.events))

    @admin.display(description="secret")
    def secret_start(self, endpoint):
        return code(f"{endpoint.secret_prefix}…")

    @admin.display(description="created", ordering="created_at")
    def created(self, endpoint):
        return short_datetime(endpoint.created_at)

    @admin.display(description=f"latest {RECENT_DELIVERIES} deliveries")
    def deliveries(self, endpoint):
        rows = [
            (format_html('<a href="{}">{}</a>', reverse("admin:exports_webhookdelivery_change", args=[d.pk]), d.event),
             short_datetime(d.created_at), d.status, d.attempts, code(d.job_id))
            for d in endpoint.deliveries.order_by("-id")[:RECENT_DELIVERIES]
        ]
        return html_table(["event", "created", "status", "attempts", "job"], rows)

    def add_from_form(self, request, form):
        data = form.cleaned_data
        endpoint, secret = webhook_endpoint_create(
            tenant=data["tenant"], url=data["url"], events=data["events"], created_by=request.user.get_username()
        )
        messages.success(request, f"Webhook endpoint {endpoint.url} added. Its signing secret, shown only this once: {secret}")
        return endpoint


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ObjectButtons, TenantScopedAdmin):
    list_display = ("event", "endpoint", "status", "attempts", "created", "next_attempt", "job_id")
    list_filter = ("status", "event", ("endpoint", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("endpoint",)
    search_fields = ("=delivery_id", "=job_id")
    fields = ("delivery_id", "event", "endpoint", "tenant", "job_kind", "job_id", "status", "attempts",
              "created_at", "next_attempt_at", "finished_at", "attempt_table", "body_text")
    readonly_fields = fields
    actions = ("redeliver_selected",)
    object_buttons = (ObjectButton("redeliver", "Redeliver"),)

    @admin.display(description="created", ordering="created_at")
    def created(self, delivery):
        return short_datetime(delivery.created_at)

    @admin.display(description="next attempt")
    def next_attempt(self, delivery):
        return short_datetime(delivery.next_attempt_at if delivery.status == DeliveryStatus.PENDING else None)

    @admin.display(description="attempts made")
    def attempt_table(self, delivery):
        rows = [(short_datetime(a.at), a.outcome, or_empty(a.status_code), f"{a.latency_ms} ms",
                 or_empty(a.error), code(a.response_excerpt[:200]))
                for a in delivery.attempt_rows.order_by("at")]
        return html_table(["at", "outcome", "status", "latency", "error", "response (start)"], rows)

    @admin.display(description="body")
    def body_text(self, delivery):
        return format_html("<pre>{}</pre>", bytes(delivery.body).decode("utf-8", "replace"))

    def redeliver_button(self, request, delivery):
        webhook_delivery_redeliver(delivery)
        self.log_change(request, delivery, "Redelivered")
        messages.success(request, f"Delivery {delivery.delivery_id} queued to be sent again.")
        return delivery

    @admin.action(description="Redeliver selected deliveries", permissions=["supervise"])
    def redeliver_selected(self, request, queryset):
        for delivery in queryset:
            webhook_delivery_redeliver(delivery)
        messages.success(request, f"Queued {len(queryset)} delivery(ies) to be sent again.")
