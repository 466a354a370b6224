"""API keys and OAuth clients: secrets shown once, revocable from the list or the detail page;
each client's state."""
from django import forms
from django.contrib import admin, messages
from django.db.models import Q

from tenants import services
from tenants.admin.buttons import ObjectButton, ObjectButtons
from tenants.admin.display import created_column, field_display, or_empty, short_datetime, short_hash
from tenants.admin.filters import ConditionFilter
from tenants.admin_scope import ServiceAddMixin, TenantChoiceForm, TenantScopedAdmin
from tenants.credentials import oauth_client_refusal, with_membership_group
from tenants.models import ApiKey, OAuthClient, Permission


class ApiKeyForm(TenantChoiceForm):
    name = forms.CharField(max_length=100)
    permissions = forms.MultipleChoiceField(
        choices=Permission.choices,
        initial=services.DEFAULT_KEY_PERMISSIONS,
        widget=forms.CheckboxSelectMultiple,
    )
    supervisor = forms.BooleanField(required=False, help_text="The key sees every job of the tenant.")


class SupervisorFilter(admin.BooleanFieldListFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "supervisor"


class KeyStateFilter(ConditionFilter):
    title = "state"
    parameter_name = "state"
    conditions = {"active": ("active", Q(revoked_at__isnull=True)), "revoked": ("revoked", Q(revoked_at__isnull=False))}


@admin.register(ApiKey)
class ApiKeyAdmin(ObjectButtons, ServiceAddMixin, TenantScopedAdmin):
    allow_add = True
    add_form = ApiKeyForm
    add_help = "The secret is shown once, on the next page. Store it before leaving it."
    # At 1366 px, beside the filters: when the key was made is on its detail page.
    list_display = ("name", "tenant", "prefix", "permission_list", "supervisor", "last_used", "revoked")
    list_filter = (("tenant", admin.RelatedOnlyFieldListFilter), ("is_supervisor", SupervisorFilter), KeyStateFilter)
    list_select_related = ("tenant",)
    search_fields = ("name", "prefix")
    fields = ("name", "tenant", "prefix", "permission_list", "supervisor", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke_keys",)
    object_buttons = (
        ObjectButton("revoke", "Revoke key", danger=True, shown=lambda api_key: api_key.revoked_at is None),
    )
    last_used = field_display("last_used_at", "last used", short_datetime)
    revoked = field_display("revoked_at", "revoked", short_datetime)

    @admin.display(description="permissions")
    def permission_list(self, api_key):
        labels = dict(Permission.choices)
        return or_empty(", ".join(labels.get(name, name).lower() for name in api_key.permissions))

    @admin.display(description="supervisor", boolean=True, ordering="is_supervisor")
    def supervisor(self, api_key):
        return api_key.is_supervisor

    def add_from_form(self, request, form):
        data = form.cleaned_data
        api_key, secret = services.apikey_create(
            tenant=data["tenant"],
            name=data["name"],
            permissions=data["permissions"],
            supervisor=data["supervisor"],
        )
        messages.success(
            request,
            f"API key '{api_key.name}' created for {api_key.tenant}. Its secret, shown only "
            f"this once: {secret}",
        )
        return api_key

    @admin.action(description="Revoke selected API keys", permissions=["supervise"])
    def revoke_keys(self, request, queryset):
        revoked = sum(services.apikey_revoke(api_key=api_key) for api_key in queryset)
        messages.success(request, f"Revoked {revoked} API key(s).")

    def revoke_button(self, request, api_key):
        if services.apikey_revoke(api_key=api_key):
            self.log_change(request, api_key, "Revoked")
            messages.success(request, f"API key '{api_key.name}' revoked: it is refused from now on.")
        else:
            messages.warning(request, f"API key '{api_key.name}' was already revoked.")
        return api_key


class OAuthClientForm(TenantChoiceForm):
    name = forms.CharField(max_length=255)
    username = forms.CharField(max_length=150, help_text="The tenant member the client acts as.")


@admin.register(OAuthClient)
class OAuthClientAdmin(ObjectButtons, ServiceAddMixin, TenantScopedAdmin):
    allow_add = True
    add_form = OAuthClientForm
    add_help = "The client secret is shown once, on the next page. Store it before leaving it."
    list_display = ("name", "client_id_short", "tenant", "user", "state", "created")
    list_filter = (("tenant", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("tenant", "application", "user")
    search_fields = ("application__name", "application__client_id")
    fields = ("name", "client_id", "tenant", "user", "state", "created_at")
    readonly_fields = fields
    actions = ("revoke_clients",)
    object_buttons = (ObjectButton("revoke", "Revoke client", danger=True),)
    created = created_column

    def get_queryset(self, request):
        return with_membership_group(super().get_queryset(request))

    @admin.display(description="name", ordering="application__name")
    def name(self, client):
        return client.application.name

    @admin.display(description="state")
    def state(self, client):
        refusal = oauth_client_refusal(client, client.membership_group)
        return f"refused: {refusal}" if refusal else "active"

    @admin.display(description="client id")
    def client_id(self, client):
        return client.application.client_id

    @admin.display(description="client id", ordering="application__client_id")
    def client_id_short(self, client):
        return short_hash(client.application.client_id)

    def add_from_form(self, request, form):
        data = form.cleaned_data
        client, client_id, secret = services.oauth_client_create(
            tenant=data["tenant"], name=data["name"], username=data["username"]
        )
        messages.success(
            request,
            f"OAuth client '{data['name']}' created for {client.tenant}. client_id: {client_id} "
            f"client_secret, shown only this once: {secret}",
        )
        return client

    @admin.action(description="Revoke selected OAuth clients (delete them)", permissions=["supervise"])
    def revoke_clients(self, request, queryset):
        clients = list(queryset)
        for client in clients:
            services.oauth_client_revoke(client=client)
        messages.success(request, f"Revoked {len(clients)} OAuth client(s).")

    def revoke_button(self, request, client):
        """Revoking deletes the client: the changelist is shown afterwards."""
        name = client.application.name
        self.log_deletions(request, [client])
        services.oauth_client_revoke(client=client)
        messages.success(request, f"OAuth client '{name}' revoked: it and its bearer tokens are deleted.")
        return None
