"""The catalog: folders, services and versions (upload validated as service_version_add)."""

import tempfile
from contextlib import ExitStack
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from tenants import services
from tenants.admin_scope import ServiceAddMixin, TenantChoiceForm, TenantScopedAdmin
from tenants.models import Folder, Service, ServiceVersion


def short_hash(value: str) -> str:
    return f"{value[:12]}…" if value else "—"



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
