"""Tenants (their limits are the operator's) and their members."""
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.template.defaultfilters import filesizeformat

from tenants import services
from tenants.admin.display import created_column, field_display
from tenants.admin.users import AccessRevokedMessage
from tenants.admin_scope import ServiceAddMixin, TenantChoiceForm, TenantScopedAdmin
from tenants.models import Membership, OAuthClient, Tenant


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_lookup = "pk"
    list_display = ("slug", "export_limit", "import_limit", "max_package_mb", "job_timeout", "created")
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

    created = created_column
    export_limit = field_display("export_api_job_limit", "export jobs at once")
    import_limit = field_display("import_api_job_limit", "import jobs at once")

    @admin.display(description="max package", ordering="max_package_bytes")
    def max_package_mb(self, tenant):
        return filesizeformat(tenant.max_package_bytes)

    @admin.display(description="job timeout", ordering="job_timeout_seconds")
    def job_timeout(self, tenant):
        return f"{tenant.job_timeout_seconds:,} s"

    def has_change_permission(self, request, obj=None):
        # Limits are the operator's call; tenants are created with `manage.py tenant_create`.
        return request.user.is_superuser

    def get_fields(self, request, obj=None):
        """The operator edits the limits as numbers; a supervisor reads them in words."""
        if self.has_change_permission(request, obj):
            return self.fields
        return ("slug", "export_limit", "import_limit", "max_package_mb", "job_timeout", "created_at")


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
    list_display = ("user", "tenant", "group", "created")
    list_filter = ("group", ("tenant", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("user", "tenant")
    search_fields = ("user__username",)
    readonly_fields = ("tenant", "user", "group", "created_at")
    created = created_column

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
