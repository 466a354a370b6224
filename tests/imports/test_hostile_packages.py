"""Hostile uploads fail with INVALID_IMPORT_ZIP, name the problem, and leave the destination unchanged."""
import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from exports.models import ImportJob
from tenants.models import Folder
from tests.conftest import SparkClient
from tests.factories import make_api_key
from tests.imports.conftest import run_workers
from tests.imports.test_import_api import catalog_state, modify

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_server_errors")]


def rezip(package: bytes, *, drop=(), replace=None, add=None) -> bytes:
    """The package's entries, re-written with some dropped, replaced or added."""
    source = zipfile.ZipFile(io.BytesIO(package))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename in drop:
                continue
            data = (replace or {}).get(info.filename, source.read(info))
            target.writestr(info, data)
        for name, data in (add or {}).items():
            target.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def first_workbook(package: bytes) -> str:
    return next(n for n in zipfile.ZipFile(io.BytesIO(package)).namelist() if n.endswith(".xlsx"))


def reversed_member(package: bytes, name: str) -> bytes:
    """Same size, other bytes: only the SHA-256 in the manifest can tell."""
    return zipfile.ZipFile(io.BytesIO(package)).read(name)[::-1]


HOSTILE = {
    "not a zip": (lambda p: b"this is not a zip file at all", "not a ZIP"),
    "truncated": (lambda p: p[: len(p) // 2], "truncated"),
    "zip-slip path": (lambda p: rezip(p, add={"../../evil.txt": b"x"}), "unsafe"),
    "zip bomb": (lambda p: rezip(p, add={"bomb.bin": b"\0" * (30 * 1024 * 1024)}), "zip bomb"),
    "tampered file": (lambda p: rezip(p, replace={first_workbook(p): reversed_member(p, first_workbook(p))}), "SHA-256"),
    "missing manifest": (lambda p: rezip(p, drop={"manifest.json"}), "manifest.json"),
    "manifest points at a missing entry": (lambda p: rezip(p, drop={first_workbook(p)}), "no such entry"),
}


@pytest.fixture
def globex_api(other_tenant):
    for name in ("pricing", "claims"):
        Folder.objects.create(tenant=other_tenant, name=name)
    return SparkClient(other_tenant.slug, make_api_key(other_tenant, name="importer"))


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_package_is_refused_and_changes_nothing(case, source, globex_api, other_tenant):
    make, expected = HOSTILE[case]
    before = catalog_state(other_tenant)
    data = {
        "importRequestEntity": json.dumps({"inputs": modify(("claims/triage", None))}),
        "file": SimpleUploadedFile("package.zip", make(source), "application/zip"),
    }

    response = globex_api.post(globex_api.api("import"), data, format="multipart")

    assert response.status_code == 422, response.json()
    assert response.json()["code"] == "INVALID_IMPORT_ZIP"
    assert expected.lower() in response.json()["message"].lower()
    assert catalog_state(other_tenant) == before
    assert not ImportJob.objects.exists()


def test_onpremises_package_is_refused(tenant, api, source, globex_api, other_tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job_id = api.post(api.api("export"), {"inputs": {"folders": ["claims"]}, "file_filter": "onpremises"}, format="json").json()["id"]
    run_workers()
    status = api.get(api.api(f"export/{job_id}/status")).json()
    onpremises = b"".join(api.get(status["outputs"]["files"][0]["file"]).streaming_content)
    before = catalog_state(other_tenant)

    response = globex_api.post(
        globex_api.api("import"),
        {"importRequestEntity": json.dumps({"inputs": modify(("claims/triage", None))}), "file": SimpleUploadedFile("p.zip", onpremises)},
        format="multipart",
    )

    assert response.status_code == 422
    assert response.json()["code"] == "INVALID_IMPORT_ZIP"
    assert "onpremises" in response.json()["message"]
    assert catalog_state(other_tenant) == before
