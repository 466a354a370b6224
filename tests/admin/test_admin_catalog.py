"""Catalog admin: upload a service version through the same validation as the command."""
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tenants import demo
from tenants.models import Folder, ServiceVersion
from tests.factories import ServiceVersionFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:tenants_serviceversion_add")


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


def test_version_list_shows_compiled_sizes_and_hashes(admin_client_a, tenant):
    compiled = ServiceVersionFactory(service__folder__tenant=tenant, service__name="quote", version="1.0.0")
    ServiceVersionFactory(service=compiled.service, version="1.1.0", compiled=False)
    html = admin_client_a.get(reverse("admin:tenants_serviceversion_changelist")).content.decode()
    assert 'alt="True"' in html and 'alt="False"' in html
    assert compiled.workbook_sha256[:12] in html and compiled.neuron_sha256[:12] in html
    assert "1.1.0" in html and "quote" in html
