"""Storage on S3 for real: a moto server over HTTP on loopback, the API and a real RQ worker.

Catalog uploads, packaging and upload of an export, download (credentials and signed link),
verify, purge and import all go through the project's own code paths to the bucket.
"""
import hashlib
import io
import json
import os
import time
import tracemalloc
import zipfile
import zlib
from datetime import timedelta

import django_rq
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone
from rq import SimpleWorker
from storages.backends.s3 import S3Storage

from exports.models import ExportJob, ImportJob, package_storage
from tenants.models import Folder, ServiceVersion
from tenants.services import service_version_add
from tests.conftest import SparkClient
from tests.factories import ServiceVersionFactory, demo_files, make_api_key
from tests.reliability.conftest_s3 import (  # noqa: F401 - fixtures
    export_status,
    moto_server,
    package_key,
    post_export,
    run_worker,
    s3,
    sha256,
    work_files,
)

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]  # a moto server process

MB = 1024 * 1024


def run(command, *args) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def catalog(s3, tenant, tmp_path):
    """Three versions stored in the bucket: one through service_version_add, two by the factory."""
    workbook, neuron = demo_files("quote", "1.0.0")
    (tmp_path / "quote.xlsx").write_bytes(workbook)
    (tmp_path / "neuron.zip").write_bytes(neuron)
    Folder.objects.create(tenant=tenant, name="pricing")
    versions = [
        service_version_add(
            tenant=tenant, folder="pricing", service="quote", version="1.0.0",
            workbook_path=tmp_path / "quote.xlsx", neuron_path=tmp_path / "neuron.zip",
        )
    ]
    versions.append(ServiceVersionFactory(service=versions[0].service, version="1.1.0"))
    versions.append(ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="claims", service__name="triage", version="0.1.0"))
    return versions


@pytest.fixture
def closed_export(s3, api, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["pricing", "claims"]}})
    run_worker(redis_queue)
    status = export_status(api, job_id)
    assert status["status"] == "closed", status
    return job_id, status


def download(client, url) -> tuple[bytes, object]:
    response = client.get(url)
    assert response.status_code == 200, response
    assert response["Content-Type"] == "application/zip"
    body = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(body)
    return body, response


def test_catalog_files_are_stored_in_the_bucket(s3, catalog):
    keys = s3.keys(prefix="catalog/")
    assert len(keys) == 6  # a workbook and a Neuron package per version
    for version in catalog:
        version.refresh_from_db()
        assert version.workbook.name in keys and version.neuron.name in keys
        assert sha256(s3.read(version.workbook.name, bucket=s3.bucket)) == version.workbook_sha256
        assert sha256(s3.read(version.neuron.name, bucket=s3.bucket)) == version.neuron_sha256
    assert not os.path.exists(os.path.join(settings.MEDIA_ROOT, "catalog"))


def test_export_is_packaged_and_uploaded_to_the_bucket(s3, closed_export):
    job_id, status = closed_export
    key = package_key(job_id)
    assert s3.keys(prefix="packages/") == [key]  # no temporary or side object
    stored = s3.read(key)
    assert sha256(stored) == status["outputs"]["files"][0]["file_hash"]
    assert ExportJob.objects.get(pk=job_id).file_size == len(stored)
    assert s3.multipart_uploads() == []
    assert work_files() == []
    names = zipfile.ZipFile(io.BytesIO(stored)).namelist()
    assert names[0] == "manifest.json"
    assert "pricing/quote/1.1.0/neuron.zip" in names and "claims/triage/0.1.0/triage.xlsx" in names


def test_download_streams_the_object_with_credentials_and_through_the_signed_link(s3, api, client, closed_export):
    job_id, status = closed_export
    stored = s3.read(package_key(job_id))
    url = status["outputs"]["files"][0]["file"]

    with_key, response = download(api, url.split("?")[0])
    assert with_key == stored
    assert response["Content-Disposition"].startswith("attachment; filename=")

    signed, _ = download(client, url)
    assert signed == stored
    assert client.get(url[:-2] + ("AA" if not url.endswith("AA") else "BB")).status_code == 403


def test_verify_passes_then_detects_a_tampered_object(s3, closed_export):
    job_id, _ = closed_export
    assert "1 package(s) verified, 0 damaged." in run("exports_verify")

    key = package_key(job_id)
    data = bytearray(s3.read(key))
    data[len(data) // 2] ^= 0xFF
    s3.client.put_object(Bucket=s3.package_bucket, Key=key, Body=bytes(data))
    with pytest.raises(CommandError, match="1 stored package"):
        run("exports_verify")


def test_purge_deletes_the_object_and_the_link_answers_410(s3, api, client, closed_export):
    job_id, status = closed_export
    url = status["outputs"]["files"][0]["file"]
    ExportJob.objects.filter(pk=job_id).update(finished_at=timezone.now() - timedelta(days=8))

    assert "Deleted 1 package(s)" in run("exports_purge", "--older-than", "7d", "--apply")

    assert s3.keys(prefix="packages/") == []
    gone = client.get(url)
    assert gone.status_code == 410
    assert gone.json()["code"] == "PACKAGE_EXPIRED"
    assert api.get(url.split("?")[0]).status_code == 410


def test_import_into_another_tenant_stores_its_files_in_the_bucket(s3, api, closed_export, other_tenant, django_capture_on_commit_callbacks):
    job_id, status = closed_export
    package = s3.read(package_key(job_id))
    Folder.objects.create(tenant=other_tenant, name="pricing")
    Folder.objects.create(tenant=other_tenant, name="claims")
    dest = SparkClient(other_tenant.slug, make_api_key(other_tenant, name="importer"))
    entity = {"inputs": {"services_modify": [
        {"service_uri_source": uri, "service_uri_destination": None, "update_version_type": "minor"}
        for uri in ("pricing/quote", "claims/triage")
    ]}}
    with django_capture_on_commit_callbacks(execute=True):
        response = dest.post(dest.api("import"), {
            "importRequestEntity": json.dumps(entity),
            "file": SimpleUploadedFile("pkg.zip", package, "application/zip"),
        }, format="multipart")
    assert response.status_code == 200, response.json()
    import_id = response.json()["id"]
    assert s3.keys(prefix=f"packages/imports/{other_tenant.slug}/") == [f"packages/imports/{other_tenant.slug}/{import_id}.zip"]

    queues = [django_rq.get_queue("exports"), django_rq.get_queue("imports")]
    with django_capture_on_commit_callbacks(execute=True):  # the worker's on_commit work
        SimpleWorker(queues, connection=queues[0].connection).work(burst=True)

    result = dest.get(dest.api(f"import/{import_id}/status")).json()
    assert result["status"] == "closed", result
    imported = ServiceVersion.objects.filter(service__folder__tenant=other_tenant)
    assert imported.count() == 3
    keys = s3.keys(prefix="catalog/")
    for version in imported:
        assert version.workbook.name in keys and version.neuron.name in keys
        assert sha256(s3.read(version.workbook.name, bucket=s3.bucket)) == version.workbook_sha256
        assert sha256(s3.read(version.neuron.name, bucket=s3.bucket)) == version.neuron_sha256
    assert len(keys) == 12  # 3 source + 3 imported versions, two files each
    assert ImportJob.objects.get(pk=import_id).upload.name == f"imports/{other_tenant.slug}/{import_id}.zip"


def test_a_20_mb_package_downloads_in_chunks_without_loading_the_object(s3, api, client, tenant, redis_queue, django_capture_on_commit_callbacks, monkeypatch):
    version = ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="big", service__name="huge", version="1.0.0")
    neuron = os.urandom(20 * MB)
    version.neuron.save("neuron.zip", ContentFile(neuron), save=False)
    version.neuron_size, version.neuron_sha256 = len(neuron), hashlib.sha256(neuron).hexdigest()
    version.neuron_crc32 = zlib.crc32(neuron)
    version.save()
    del neuron

    started = time.monotonic()
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["big"]}, "file_filter": "onpremises"})
    run_worker(redis_queue)
    status = export_status(api, job_id)
    assert status["status"] == "closed", status
    size = ExportJob.objects.get(pk=job_id).file_size
    assert size > 20 * MB
    assert s3.multipart_uploads() == []  # the multipart upload (3 parts of 8 MiB) completed
    packaged_in = time.monotonic() - started

    opened = []
    real_open = S3Storage._open
    monkeypatch.setattr(S3Storage, "_open", lambda self, name, mode="rb": opened.append(name) or real_open(self, name, mode))
    url = status["outputs"]["files"][0]["file"]
    for downloader in (api, client):  # with credentials, then through the signed link
        tracemalloc.start()
        response = downloader.get(url if downloader is client else url.split("?")[0])
        assert response.status_code == 200
        assert response["Content-Type"] == "application/zip"
        assert int(response["Content-Length"]) == size
        digest, received, chunks, biggest = hashlib.sha256(), 0, 0, 0
        for chunk in response.streaming_content:
            digest.update(chunk)
            received += len(chunk)
            chunks += 1
            biggest = max(biggest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert received == size
        assert digest.hexdigest() == status["outputs"]["files"][0]["file_hash"]
        assert chunks >= 20 and biggest <= MB
        assert peak < 6 * MB, f"download peak {peak / MB:.1f} MiB for a {size / MB:.1f} MiB package"
    assert opened == []  # storage.open() on S3 would hold the whole object in memory
    assert packaged_in < 60
    assert isinstance(package_storage(), S3Storage)
