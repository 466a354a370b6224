"""Catalog admin: upload a service version through the same validation as the command; the
version list, its filters and the detail page."""
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from tenants import demo
from tenants.models import Folder, ServiceVersion
from tests.factories import ServiceVersionFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:tenants_serviceversion_add")
CHANGELIST = reverse("admin:tenants_serviceversion_changelist")


def stored_catalog_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "catalog"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def upload(client, tenant, *, workbook: bytes, neuron: bytes | None = None, version="2.0.0"):
    data = {
        "tenant": tenant.pk,
        "folder": "pricing",
        "service": "home-cover",
        "version": version,
        "release_note": "from the admin",
        "workbook": SimpleUploadedFile("Home Cover.xlsx", workbook),
    }
    if neuron is not None:
        data["neuron"] = SimpleUploadedFile("neuron.zip", neuron)
    return client.post(ADD, data)


def test_upload_stores_a_compiled_version(admin_client_a, supervisor, tenant):
    workbook = demo.make_demo_workbook("home-cover", "2.0.0")
    neuron = demo.make_demo_neuron("home-cover", "2.0.0")
    response = upload(admin_client_a, tenant, workbook=workbook, neuron=neuron)

    version = ServiceVersion.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:tenants_serviceversion_change", args=[version.pk])
    assert str(version) == "pricing/home-cover[2.0.0]"
    assert version.service.folder.tenant == tenant
    assert version.workbook_name == "Home Cover.xlsx"
    assert version.is_compiled and version.neuron_size == len(neuron)
    assert version.workbook.read() == workbook and version.release_note == "from the admin"
    assert version.author == supervisor.username
    assert len(stored_catalog_files()) == 2

    page = admin_client_a.get(response["Location"]).content.decode()
    assert "Added pricing/home-cover[2.0.0] (compiled)." in page
    assert 'type="file"' not in page  # existing versions are read-only


def test_upload_without_neuron_is_not_compiled(admin_client_a, tenant):
    upload(admin_client_a, tenant, workbook=demo.make_demo_workbook("home-cover", "2.0.0"))
    assert not ServiceVersion.objects.get().is_compiled


def test_invalid_workbook_is_a_form_error_and_stores_nothing(admin_client_a, tenant):
    response = upload(admin_client_a, tenant, workbook=b"this is not a workbook")
    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert errors and "Home Cover.xlsx" in errors[0]
    assert ServiceVersion.objects.count() == 0 and Folder.objects.count() == 0
    assert stored_catalog_files() == []


def test_duplicate_version_is_a_form_error(admin_client_a, tenant):
    workbook = demo.make_demo_workbook("home-cover", "2.0.0")
    upload(admin_client_a, tenant, workbook=workbook)
    response = upload(admin_client_a, tenant, workbook=workbook)
    assert "already exists" in response.context["form"].non_field_errors()[0]
    assert ServiceVersion.objects.count() == 1
    assert len(stored_catalog_files()) == 1


def test_version_list_shows_compiled_and_sizes_and_the_detail_the_hashes(admin_client_a, tenant):
    compiled = ServiceVersionFactory(service__folder__tenant=tenant, service__name="quote", version="1.0.0")
    uncompiled = ServiceVersionFactory(service=compiled.service, version="1.1.0", compiled=False)
    html = admin_client_a.get(CHANGELIST).content.decode()
    assert 'alt="True"' in html and 'alt="False"' in html
    assert "1.1.0" in html and "quote" in html and filesizeformat(compiled.neuron_size) in html
    assert compiled.workbook_sha256[:12] not in html  # on the detail page

    detail = admin_client_a.get(reverse("admin:tenants_serviceversion_change", args=[compiled.pk])).content.decode()
    assert compiled.workbook_sha256 in detail and compiled.neuron_sha256 in detail
    assert "Workbook SHA-256:" in detail and "Neuron SHA-256:" in detail
    uncompiled_detail = admin_client_a.get(reverse("admin:tenants_serviceversion_change", args=[uncompiled.pk]))
    for label in ("Neuron SHA-256", "Neuron size", "Compiler version", "Author"):
        assert readonly_value(uncompiled_detail, label) == "—", label


def readonly_value(response, label: str) -> str:
    html = response.content.decode()
    match = re.search(rf"<label>{label}:</label>\s*<div class=\"readonly\">(.*?)</div>", html, re.S)
    assert match, label
    return match.group(1).strip()


@pytest.fixture
def catalog(tenant, other_tenant):
    """acme: pricing/quote (compiled 1.0.0, uncompiled 1.1.0), pricing/home, claims/intake; globex: secret/plans."""
    quote = ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing", service__name="quote")
    versions = {
        "quote 1.0.0": quote,
        "quote 1.1.0": ServiceVersionFactory(service=quote.service, version="1.1.0", compiled=False),
        "home": ServiceVersionFactory(service__folder=quote.service.folder, service__name="home"),
        "intake": ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="claims", service__name="intake"),
    }
    ServiceVersionFactory(service__folder__tenant=other_tenant, service__folder__name="secret", service__name="plans")
    return versions


def listed(client, **filters) -> set:
    return set(client.get(CHANGELIST, filters).context["cl"].result_list)


def test_catalog_filters_by_folder_service_and_compiled(admin_client_a, catalog):
    pricing = {catalog["quote 1.0.0"], catalog["quote 1.1.0"], catalog["home"]}
    assert listed(admin_client_a, folder="pricing") == pricing
    assert listed(admin_client_a, service="pricing/quote") == {catalog["quote 1.0.0"], catalog["quote 1.1.0"]}
    assert listed(admin_client_a, compiled="no") == {catalog["quote 1.1.0"]}
    assert listed(admin_client_a, compiled="yes", folder="pricing") == {catalog["quote 1.0.0"], catalog["home"]}
    assert listed(admin_client_a, service="claims/intake", compiled="no") == set()


def test_catalog_filter_choices_are_the_supervisors_and_services_follow_the_folder(admin_client_a, catalog):
    def choices(response, title):
        [spec] = [spec for spec in response.context["cl"].filter_specs if spec.title == title]
        return [value for value, _ in spec.lookup_choices]

    everything = admin_client_a.get(CHANGELIST)
    assert choices(everything, "folder") == ["claims", "pricing"]  # not globex's "secret"
    assert choices(everything, "service") == ["claims/intake", "pricing/home", "pricing/quote"]
    assert choices(admin_client_a.get(CHANGELIST, {"folder": "pricing"}), "service") == ["pricing/home", "pricing/quote"]
    assert "secret" not in everything.content.decode()


def test_another_tenants_folder_filters_to_nothing(admin_client_a, catalog):
    assert listed(admin_client_a, folder="secret") == set()
    assert listed(admin_client_a, service="secret/plans") == set()
