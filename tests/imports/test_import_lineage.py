"""Every imported version records where it came from; the status document and the admin show it."""
import hashlib
import io
import json
import uuid
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from tenants.models import ServiceVersion
from tenants.services import member_add
from tests.imports.test_hostile_packages import rezip
from tests.imports.test_import_api import import_and_run, modify

pytestmark = pytest.mark.django_db


def with_manifest(package: bytes, **changes) -> bytes:
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(package)).read("manifest.json"))
    return rezip(package, replace={"manifest.json": json.dumps({**manifest, **changes}).encode()})


def test_imported_versions_record_their_lineage(source, dest, tenant, other_tenant, django_capture_on_commit_callbacks):
    status = import_and_run(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/quote", "pricing/quote-copy"))})

    assert status["status"] == "closed", status
    package_sha256 = hashlib.sha256(source).hexdigest()
    outputs = status["outputs"]
    assert (outputs["source_tenant"], outputs["source_installation"], outputs["file_hash"]) == ("acme", None, package_sha256)
    source_ids = {v.version: v.version_id for v in ServiceVersion.objects.filter(service__folder__tenant=tenant, service__name="quote")}
    imported = ServiceVersion.objects.filter(service__folder__tenant=other_tenant).order_by("major", "minor")
    assert [(v.version, v.imported_from_version_id) for v in imported] == [(version, source_ids[version]) for version in ("1.0.0", "1.1.0")]
    for version in imported:
        assert version.is_imported
        assert version.imported_by_job == uuid.UUID(status["id"])
        assert version.imported_from_tenant == "acme"
        assert version.imported_from_installation == ""  # the manifest does not say
        assert version.imported_package_sha256 == package_sha256
    for row in outputs["service_versions"]:
        assert row["version_id_source"] == str(source_ids[row["version_source"]])
        assert row["version_id_destination"] == str(imported.get(version=row["version_destination"]).version_id)


def test_the_source_installation_is_recorded_when_the_manifest_names_it(source, dest, other_tenant, django_capture_on_commit_callbacks):
    package = with_manifest(source, source_installation="eu-prod\n", source_tenant=["not", "text"])

    status = import_and_run(dest, django_capture_on_commit_callbacks, package, {"inputs": modify(("claims/triage", None))})

    assert (status["outputs"]["source_installation"], status["outputs"]["source_tenant"]) == ("eu-prod", None)
    version = ServiceVersion.objects.get(service__folder__tenant=other_tenant)
    assert (version.imported_from_installation, version.imported_from_tenant) == ("eu-prod", "")


def test_the_admin_shows_the_lineage_of_imported_versions_only(source, dest, tenant, other_tenant, django_capture_on_commit_callbacks):
    status = import_and_run(dest, django_capture_on_commit_callbacks, with_manifest(source, source_installation="eu-prod"), {"inputs": modify(("claims/triage", None))})
    imported = ServiceVersion.objects.get(service__folder__tenant=other_tenant)
    client = Client()
    client.force_login(member_add(tenant=other_tenant, username="bob@globex.test", supervisor=True).user)

    page = client.get(reverse("admin:tenants_serviceversion_change", args=[imported.pk])).content.decode()

    assert "Lineage (imported)" in page
    assert "tenant <code>acme</code> of eu-prod" in page
    assert str(imported.imported_from_version_id) in page
    assert imported.imported_package_sha256 in page
    assert reverse("admin:exports_importjob_change", args=[status["id"]]) in page
    local = ServiceVersion.objects.get(service__folder__tenant=tenant, service__name="triage")
    client.force_login(member_add(tenant=tenant, username="sue@acme.test", supervisor=True).user)
    assert "Lineage" not in client.get(reverse("admin:tenants_serviceversion_change", args=[local.pk])).content.decode()
