"""Tenant scoping for the admin: a supervisor sees and acts on the tenants they supervise only.

Supervisors are staff without Django model permissions; what they may do is decided here,
from their supervisor memberships. A superuser sees every tenant.
"""
from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from sparkexport.errors import ApplicationError
from tenants.models import Group, Membership, Tenant

_CACHE_ATTR = "_supervised_tenant_ids"


def supervised_tenant_ids(request) -> frozenset[int] | None:
    """Ids of the tenants the admin user supervises; None for a superuser (every tenant)."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return frozenset()
    if user.is_superuser:
        return None
    ids = getattr(request, _CACHE_ATTR, None)
    if ids is None:
        ids = frozenset(
            Membership.objects.filter(user=user, group=Group.SUPERVISOR).values_list(
                "tenant_id", flat=True
            )
        )
        setattr(request, _CACHE_ATTR, ids)
    return ids


def supervised_tenants(request):
    """The tenants the admin user may see, as a queryset."""
    ids = supervised_tenant_ids(request)
    return Tenant.objects.all() if ids is None else Tenant.objects.filter(pk__in=ids)


class TenantScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin showing only the rows of the user's tenants; others answer 404.

    `tenant_lookup` is the ORM path from the model to its Tenant. The `allow_*` flags
    say what anyone (superusers included) may do besides viewing.
    """

    tenant_lookup = "tenant"
    allow_add = False
    allow_change = False
    allow_delete = False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        ids = supervised_tenant_ids(request)
        if ids is None:
            return queryset
        return queryset.filter(**{f"{self.tenant_lookup}__in": ids})

    def tenant_id_of(self, obj) -> int:
        *path, last = self.tenant_lookup.split("__")
        for step in path:
            obj = getattr(obj, step)
        return obj.pk if last == "pk" else getattr(obj, f"{last}_id")

    def supervises(self, request, obj=None) -> bool:
        ids = supervised_tenant_ids(request)
        if ids is None:
            return True
        return bool(ids) and (obj is None or self.tenant_id_of(obj) in ids)

    def get_list_display(self, request):
        """A "tenant" column only for a user who sees more than one tenant: for the others it
        says the same on every row and takes the room of a column that tells rows apart."""
        columns = super().get_list_display(request)
        ids = supervised_tenant_ids(request)
        if ids is not None and len(ids) <= 1:
            return tuple(column for column in columns if column != "tenant")
        return columns

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Another tenant's object must look exactly like one that does not exist.
            raise Http404(f"No {self.opts.verbose_name} with id {object_id!r}.")
        return obj

    def has_module_permission(self, request):
        return self.supervises(request)

    def has_view_permission(self, request, obj=None):
        return self.supervises(request, obj)

    def has_add_permission(self, request):
        return self.allow_add and self.supervises(request)

    def has_change_permission(self, request, obj=None):
        return self.allow_change and self.supervises(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.allow_delete and self.supervises(request, obj)

    def has_supervise_permission(self, request, obj=None):
        """Permission name "supervise": the admin actions that call services."""
        return self.supervises(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Tenant:
            kwargs["queryset"] = supervised_tenants(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class TenantChoiceForm(forms.Form):
    """A plain form whose first field is one of the user's tenants."""

    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none())

    def __init__(self, *args, tenants, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = tenants
        only = list(tenants[:2])
        if len(only) == 1:
            self.fields["tenant"].initial = only[0].pk


class ServiceAddMixin:
    """Replaces the admin's add page by a plain form whose data goes to one service.

    Subclasses set `add_form` (a TenantChoiceForm) and implement `add_from_form`, which
    calls the service and answers the new object; an ApplicationError becomes a form error.
    """

    add_form = None
    service_add_template = "admin/service_add_form.html"

    def add_from_form(self, request, form):
        raise NotImplementedError

    def url_after_add(self, obj) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        tenants = supervised_tenants(request)
        if request.method == "POST":
            form = self.add_form(request.POST, request.FILES, tenants=tenants)
            if form.is_valid():
                try:
                    obj = self.add_from_form(request, form)
                except ApplicationError as exc:
                    form.add_error(None, exc.message)
                else:
                    self.log_addition(request, obj, [{"added": {}}])
                    return HttpResponseRedirect(self.url_after_add(obj))
        else:
            form = self.add_form(tenants=tenants)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Add {self.opts.verbose_name}",
            "form": form,
            "help": getattr(self, "add_help", ""),
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.service_add_template, context)
