"""The catalog: folders, services and versions (upload validated as service_version_add)."""

import tempfile
from contextlib import ExitStack
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from tenants import services
from tenants.admin.display import byte_size, code, created_column, field_display, html_table
from tenants.admin.filters import ConditionFilter
from tenants.admin_scope import ServiceAddMixin, TenantChoiceForm, TenantScopedAdmin
from tenants.models import Folder, Service, ServiceVersion
from tenants.selectors import version_dependencies, version_dependents


@admin.register(Folder)
class FolderAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "created")
    list_filter = (("tenant", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("tenant",)
    search_fields = ("name",)
    created = created_column


@admin.register(Service)
class ServiceAdmin(TenantScopedAdmin):
    tenant_lookup = "folder__tenant"
    list_display = ("name", "folder", "tenant", "service_id", "created")
    list_filter = (("folder__tenant", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("folder__tenant",)
    search_fields = ("name", "folder__name", "=service_id")
    created = created_column

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


class FolderFilter(admin.SimpleListFilter):
    """Versions by folder name, among the folders the user sees."""

    title = "folder"
    parameter_name = "folder"

    def lookups(self, request, model_admin):
        names = model_admin.get_queryset(request).values_list("service__folder__name", flat=True)
        return [(name, name) for name in names.distinct().order_by("service__folder__name")]

    def queryset(self, request, queryset):
        return queryset.filter(service__folder__name=self.value()) if self.value() else queryset


class ServiceFilter(admin.SimpleListFilter):
    """Versions by service ("folder/service"), among those of the chosen folder if any."""

    title = "service"
    parameter_name = "service"

    def lookups(self, request, model_admin):
        versions = model_admin.get_queryset(request)
        if folder := request.GET.get(FolderFilter.parameter_name):
            versions = versions.filter(service__folder__name=folder)
        pairs = versions.values_list("service__folder__name", "service__name").distinct()
        uris = [f"{folder}/{service}" for folder, service in pairs.order_by("service__folder__name", "service__name")]
        return [(uri, uri) for uri in uris]

    def queryset(self, request, queryset):
        if not self.value() or "/" not in self.value():
            return queryset
        folder, _, service = self.value().partition("/")
        return queryset.filter(service__folder__name=folder, service__name=service)


class CompiledFilter(ConditionFilter):
    title = "compiled"
    parameter_name = "compiled"
    conditions = {"yes": ("compiled", ~Q(neuron="")), "no": ("not compiled", Q(neuron=""))}


@admin.register(ServiceVersion)
class ServiceVersionAdmin(ServiceAddMixin, TenantScopedAdmin):
    tenant_lookup = "service__folder__tenant"
    allow_add = True
    add_form = ServiceVersionForm
    add_help = "Validated as by manage.py service_version_add; the folder and service are created if new."
    # At 1366 px, beside the filters: the hashes, the file name and the release note are on
    # the detail page.
    list_display = (
        "folder",
        "service_name",
        "version",
        "compiled",
        "tenant",
        "workbook_size_display",
        "neuron_size_display",
        "created",
    )
    list_filter = (
        ("service__folder__tenant", admin.RelatedOnlyFieldListFilter),
        FolderFilter,
        ServiceFilter,
        CompiledFilter,
    )
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
        "workbook_sha",
        "neuron_size_display",
        "neuron_sha",
        "compiler",
        "note",
        "author_name",
        "created_at",
        "calls",
        "called_by",
    )
    # Shown, in a section of its own, only for a version an import wrote.
    lineage_fields = (
        "imported_from",
        "source_version_id",
        "package_sha",
        "import_job",
    )
    fields = readonly_fields
    workbook_size_display = field_display("workbook_size", "workbook size", byte_size)
    workbook_sha = field_display("workbook_sha256", "workbook SHA-256", code)
    neuron_size_display = field_display("neuron_size", "Neuron size", byte_size)
    neuron_sha = field_display("neuron_sha256", "Neuron SHA-256", code)
    compiler = field_display("compiler_version", "compiler version")
    note = field_display("release_note", "release note")
    author_name = field_display("author", "author")
    source_version_id = field_display("imported_from_version_id", "source version id", code)
    package_sha = field_display("imported_package_sha256", "package SHA-256", code)
    created = created_column

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, *self.lineage_fields)

    def get_fieldsets(self, request, obj=None):
        fieldsets = [(None, {"fields": self.fields})]
        if obj is not None and obj.is_imported:
            fieldsets.append(("Lineage (imported)", {"fields": self.lineage_fields}))
        return fieldsets

    @admin.display(description="imported from")
    def imported_from(self, version):
        installation = version.imported_from_installation or "an installation its package does not name"
        return format_html("tenant <code>{}</code> of {}", version.imported_from_tenant or "?", installation)

    @admin.display(description="import job")
    def import_job(self, version):
        # By URL name: the import job admin belongs to the exports app, above this one.
        try:
            url = reverse("admin:exports_importjob_change", args=[version.imported_by_job])
        except NoReverseMatch:
            return code(version.imported_by_job)
        return format_html('<a href="{}"><code>{}</code></a>', url, version.imported_by_job)

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

    @admin.display(description="calls (Xcalls)")
    def calls(self, version):
        if version.xcalls_scanned_at is None:
            return "not read yet: manage.py catalog_dependencies --apply"
        rows = [
            (call.reference, "dynamic: known only when the workbook calculates" if call.dynamic
             else reached.uri if reached else "not in this tenant", call.cell)
            for call, reached in version_dependencies(version)
        ]
        return html_table(("reference as written", "reaches now", "first found in"), rows)

    @admin.display(description="called by")
    def called_by(self, version):
        rows = [(str(call.version), call.reference, call.cell) for call in version_dependents(version)]
        return html_table(("version", "reference as written", "found in"), rows)

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
