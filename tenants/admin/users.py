"""Django's users, and what ending a user's access does to their OAuth clients."""
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from oauth2_provider.models import AccessToken

from tenants.models import OAuthClient


class AccessRevokedMessage:
    """Around a write that ends a user's access: tells the admin which OAuth clients it stops
    and how many of their bearer tokens went (tenants/revocation.py deletes them)."""

    def __init__(self, request, clients, reason: str):
        self.request = request
        self.clients = list(clients.select_related("application", "tenant"))
        self.reason = reason

    def __enter__(self):
        self.tokens = AccessToken.objects.filter(application__tenant_client__in=self.clients).count()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None or not self.clients:
            return
        left = AccessToken.objects.filter(application__tenant_client__in=self.clients).count()
        names = ", ".join(f"{client.application.name} ({client.tenant})" for client in self.clients)
        messages.warning(
            self.request,
            f"{self.reason}: OAuth client(s) {names} now refuse requests and token requests; "
            f"{self.tokens - left} bearer token(s) revoked.",
        )


admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class UserAccessAdmin(UserAdmin):
    """Django's user admin, saying what deactivating a user does to their OAuth clients."""

    def save_model(self, request, obj, form, change):
        if not (change and "is_active" in form.changed_data and not obj.is_active):
            return super().save_model(request, obj, form, change)
        clients = OAuthClient.objects.filter(user=obj)
        with AccessRevokedMessage(request, clients, f"user {obj} is inactive"):
            super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        self.delete_queryset(request, type(obj).objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        for user in queryset:
            clients = OAuthClient.objects.filter(user=user)
            names = ", ".join(f"{c.application.name} ({c.tenant})" for c in clients.select_related("application", "tenant"))
            tokens = AccessToken.objects.filter(application__tenant_client__in=clients).count()
            user.delete()
            if names:
                messages.warning(request, f"User {user} deleted with their OAuth client(s) {names} and {tokens} bearer token(s).")
