"""Supervisor admin for tenants: members, credentials and the catalog, scoped to the user's tenants."""
import tempfile
from contextlib import ExitStack
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from oauth2_provider.models import AccessToken
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from tenants.admin_scope import ServiceAddMixin, TenantChoiceForm, TenantScopedAdmin
from tenants import services
from tenants.credentials import oauth_client_refusal, with_membership_group
from tenants.models import (
    ApiKey,
    Folder,
    Membership,
    OAuthClient,
    Permission,
    Service,
    ServiceVersion,
    Tenant,
)


def short_hash(value: str) -> str:
    return f"{value[:12]}…" if value else "—"


# --- Tenants and members --------------------------------------------------------------


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_lookup = "pk"
    list_display = ("slug", "export_api_job_limit", "max_package_mb", "job_timeout_seconds", "created_at")
    search_fields = ("slug",)
    readonly_fields = ("slug", "created_at")
    fields = (
        "slug",
        "export_api_job_limit",
        "import_api_job_limit",
        "max_package_bytes",
        "job_timeout_seconds",
        "created_at",
    )

    @admin.display(description="max package")
    def max_package_mb(self, tenant):
        return filesizeformat(tenant.max_package_bytes)

    def has_change_permission(self, request, obj=None):
        # Limits are the operator's call; tenants are created with `manage.py tenant_create`.
        return request.user.is_superuser


class MemberForm(TenantChoiceForm):
    username = forms.CharField(max_length=150)
    supervisor = forms.BooleanField(required=False, help_text="Admin access to this tenant.")
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Only for a new user; existing users keep their password.",
    )

    def clean(self):
        cleaned = super().clean()
        username, password = cleaned.get("username"), cleaned.get("password")
        # Setting the password of an existing user would let a supervisor take over any account.
        if password and get_user_model().objects.filter(username=username).exists():
            self.add_error("password", "This user exists already; leave the password empty.")
        return cleaned


@admin.register(Membership)
class MembershipAdmin(ServiceAddMixin, TenantScopedAdmin):
    allow_add = True
    allow_delete = True
    add_form = MemberForm
    list_display = ("user", "tenant", "group", "created_at")
    list_filter = ("group", ("tenant", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("user", "tenant")
    search_fields = ("user__username",)
    readonly_fields = ("tenant", "user", "group", "created_at")

    def delete_model(self, request, obj):
        self.delete_queryset(request, Membership.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("user", "tenant"):
            clients = OAuthClient.objects.filter(user=membership.user, tenant=membership.tenant)
            with AccessRevokedMessage(request, clients, f"user {membership.user} is not a member of {membership.tenant}"):
                membership.delete()

    def add_from_form(self, request, form):
        data = form.cleaned_data
        membership = services.member_add(
            tenant=data["tenant"],
            username=data["username"],
            supervisor=data["supervisor"],
            password=data["password"] or None,
        )
        messages.success(request, f"{membership.user} is now {membership.group} in {membership.tenant}.")
        return membership


# --- Credentials ----------------------------------------------------------------------


class ApiKeyForm(TenantChoiceForm):
    name = forms.CharField(max_length=100)
    permissions = forms.MultipleChoiceField(
        choices=Permission.choices,
        initial=services.DEFAULT_KEY_PERMISSIONS,
        widget=forms.CheckboxSelectMultiple,
    )
    supervisor = forms.BooleanField(required=False, help_text="The key sees every job of the tenant.")


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceAddMixin, TenantScopedAdmin):
    allow_add = True
    add_form = ApiKeyForm
    add_help = "The secret is shown once, on the next page. Store it before leaving it."
    list_display = ("name", "tenant", "prefix", "permission_list", "is_supervisor", "created_at", "last_used_at", "revoked_at")
    list_filter = (("tenant", admin.RelatedOnlyFieldListFilter), "is_supervisor", ("revoked_at", admin.EmptyFieldListFilter))
    list_select_related = ("tenant",)
    search_fields = ("name", "prefix")
    fields = ("name", "tenant", "prefix", "permission_list", "is_supervisor", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke_keys",)

    @admin.display(description="permissions")
    def permission_list(self, api_key):
        return ", ".join(api_key.permissions)

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


class OAuthClientForm(TenantChoiceForm):
    name = forms.CharField(max_length=255)
    username = forms.CharField(max_length=150, help_text="The tenant member the client acts as.")


@admin.register(OAuthClient)
class OAuthClientAdmin(ServiceAddMixin, TenantScopedAdmin):
    allow_add = True
    add_form = OAuthClientForm
    add_help = "The client secret is shown once, on the next page. Store it before leaving it."
    list_display = ("name", "client_id", "tenant", "user", "state", "created_at")
    list_filter = (("tenant", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("tenant", "application", "user")
    search_fields = ("application__name", "application__client_id")
    fields = ("name", "client_id", "tenant", "user", "state", "created_at")
    readonly_fields = fields
    actions = ("revoke_clients",)

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


# --- Catalog --------------------------------------------------------------------------


@admin.register(Folder)
class FolderAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "created_at")
    list_filter = (("tenant", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("tenant",)
    search_fields = ("name",)


@admin.register(Service)
class ServiceAdmin(TenantScopedAdmin):
    tenant_lookup = "folder__tenant"
    list_display = ("name", "folder", "tenant", "service_id", "created_at")
    list_filter = (("folder__tenant", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("folder__tenant",)
    search_fields = ("name", "folder__name", "=service_id")

    @admin.display(ordering="folder__tenant__slug")
    def tenant(self, service):
        return service.folder.tenant


class ServiceVersionForm(TenantChoiceForm):
    folder = forms.CharField(max_length=100)
    service = forms.CharField(max_length=100)
    version = forms.CharField(max_length=32, help_text="MAJOR.MINOR.PATCH, e.g. 1.0.0")
    workbook = forms.FileField(help_text="The Excel workbook (.xlsx or .xlsm).")
    neuron = forms.FileField(required=False, help_text="The compiled Neuron package (.zip), if any.")
    release_note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


def _spooled(stack: ExitStack, upload) -> Path:
    """Write an upload (possibly held in memory) to a temporary file the service can read."""
    handle = stack.enter_context(tempfile.NamedTemporaryFile(suffix=Path(upload.name).suffix))
    for chunk in upload.chunks():
        handle.write(chunk)
    handle.flush()
    return Path(handle.name)


@admin.register(ServiceVersion)
class ServiceVersionAdmin(ServiceAddMixin, TenantScopedAdmin):
    tenant_lookup = "service__folder__tenant"
    allow_add = True
    add_form = ServiceVersionForm
    add_help = "Validated as by manage.py service_version_add; the folder and service are created if new."
    list_display = (
        "folder",
        "service_name",
        "version",
        "compiled",
        "workbook_size_display",
        "workbook_sha",
        "neuron_size_display",
        "neuron_sha",
        "created_at",
    )
    list_filter = (("service__folder__tenant", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("service__folder__tenant",)
    search_fields = ("service__name", "service__folder__name", "version", "=version_id")
    exclude = ("workbook", "neuron")
    readonly_fields = (
        "tenant",
        "service",
        "version",
        "version_id",
        "compiled",
        "workbook_name",
        "workbook_size_display",
        "workbook_sha256",
        "neuron_size_display",
        "neuron_sha256",
        "compiler_version",
        "release_note",
        "author",
        "created_at",
    )
    fields = readonly_fields

    @admin.display(ordering="service__folder__tenant__slug")
    def tenant(self, version):
        return version.service.folder.tenant

    @admin.display(ordering="service__folder__name")
    def folder(self, version):
        return version.service.folder.name

    @admin.display(description="service", ordering="service__name")
    def service_name(self, version):
        return version.service.name

    @admin.display(boolean=True)
    def compiled(self, version):
        return version.is_compiled

    @admin.display(description="workbook size", ordering="workbook_size")
    def workbook_size_display(self, version):
        return filesizeformat(version.workbook_size)

    @admin.display(description="workbook SHA-256")
    def workbook_sha(self, version):
        return format_html('<code title="{}">{}</code>', version.workbook_sha256, short_hash(version.workbook_sha256))

    @admin.display(description="Neuron size", ordering="neuron_size")
    def neuron_size_display(self, version):
        return filesizeformat(version.neuron_size) if version.neuron_size is not None else "—"

    @admin.display(description="Neuron SHA-256")
    def neuron_sha(self, version):
        return format_html('<code title="{}">{}</code>', version.neuron_sha256, short_hash(version.neuron_sha256))

    def add_from_form(self, request, form):
        data = form.cleaned_data
        with ExitStack() as stack:
            neuron = data["neuron"]
            version = services.service_version_add(
                tenant=data["tenant"],
                folder=data["folder"],
                service=data["service"],
                version=data["version"],
                workbook_path=_spooled(stack, data["workbook"]),
                workbook_name=data["workbook"].name,
                neuron_path=_spooled(stack, neuron) if neuron else None,
                release_note=data["release_note"],
                author=request.user.get_username(),
            )
        state = "compiled" if version.is_compiled else "not compiled"
        messages.success(request, f"Added {version} ({state}).")
        return version

