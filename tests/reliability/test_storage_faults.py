"""Storage failing on write: the job ends `failed` with STORAGE_ERROR and the reason, nothing
partial stays at the final location or in the work directory, and the tenant's slot is free.

S3 faults use a real moto server on loopback (killed mid-upload, a bucket deleted, a part
rejected); the full disk is a real 2 MiB tmpfs mounted for the test.
"""
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
import zlib
from pathlib import Path

import django_rq
import pytest
from botocore.awsrequest import AWSResponse
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from rq import SimpleWorker

from exports.models import ExportJob, JobStatus, package_storage
from tenants.models import Folder, ServiceVersion
from tests.conftest import SparkClient
from tests.factories import ServiceVersionFactory, make_api_key
from tests.reliability.conftest_s3 import (  # noqa: F401 - fixtures
    export_status,
    moto_server,
    package_key,
    point_storages_at_s3,
    post_export,
    run_worker,
    s3,
    work_files,
)

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]  # a moto server process

MB = 1024 * 1024


def big_version(tenant, size: int, folder="big"):
    """A compiled version whose Neuron package is `size` random bytes (incompressible)."""
    version = ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name=folder, service__name="huge", version="1.0.0")
    data = os.urandom(size)
    version.neuron.save("neuron.zip", ContentFile(data), save=False)
    version.neuron_size = len(data)
    version.neuron_sha256, version.neuron_crc32 = hashlib.sha256(data).hexdigest(), zlib.crc32(data)
    version.save()
    return version


def assert_failed_with_storage_error(api, job_id, *reason_parts) -> dict:
    status = export_status(api, job_id)
    assert status["status"] == JobStatus.FAILED, status
    assert status["outputs"]["files"] == []
    error = status["errors"][0]
    assert error["code"] == "STORAGE_ERROR", error
    assert error["message"].startswith("Reading or writing storage failed: ")
    for part in reason_parts:
        assert part in error["message"], error["message"]
    assert not ExportJob.objects.get(pk=job_id).package
    return error


def assert_slot_free(api) -> None:
    """A tenant with a limit of 1 can export again: the failed job holds no slot."""
    response = api.post(api.api("export"), {"inputs": {"folders": ["big"]}}, format="json")
    assert response.status_code == 200, response.json()


def on_part(storage, part_number: int, action) -> None:
    """Run `action(request)` just before UploadPart `part_number` of `storage`'s client is sent."""

    def hook(request, **kwargs):
        if f"partNumber={part_number}&" in request.url + "&":
            return action(request)
        return None

    storage.connection.meta.client.meta.events.register("before-send.s3.UploadPart", hook)


# --- S3 ----------------------------------------------------------------------------------


def test_s3_server_killed_mid_upload_fails_the_job(s3, api, tenant, redis_queue, django_capture_on_commit_callbacks):
    big_version(tenant, 20 * MB)  # 3 parts of 8 MiB
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["big"]}, "file_filter": "onpremises"})
    killed = []
    on_part(package_storage(), 2, lambda request: killed.append(s3.server.stop()))

    started = time.monotonic()
    run_worker(redis_queue)
    elapsed = time.monotonic() - started

    assert killed, "the server was not stopped during the upload"
    assert_failed_with_storage_error(api, job_id, "Could not connect to the endpoint URL")
    assert elapsed < 60
    assert work_files() == []
    assert_slot_free(api)
    s3.server.start()  # moto kept its objects in memory: a restarted server has none
    assert s3.client.list_buckets()["Buckets"] == []


def test_s3_bucket_deleted_before_the_upload_fails_the_job(s3, settings, api, tenant, redis_queue, django_capture_on_commit_callbacks):
    packages = f"spx-packages-{uuid.uuid4().hex[:8]}"
    s3.client.create_bucket(Bucket=packages)
    point_storages_at_s3(settings, s3.server, s3.bucket, packages)
    big_version(tenant, 1 * MB)
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["big"]}})
    s3.client.delete_bucket(Bucket=packages)

    run_worker(redis_queue)

    assert_failed_with_storage_error(api, job_id, "NoSuchBucket")
    assert work_files() == []
    assert s3.keys(prefix="packages/") == []
    assert_slot_free(api)


def test_s3_part_rejected_mid_upload_aborts_the_multipart_upload(s3, api, tenant, redis_queue, django_capture_on_commit_callbacks):
    big_version(tenant, 20 * MB)
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["big"]}, "file_filter": "onpremises"})
    seen = []

    def reject(request):
        seen.append(s3.client.list_multipart_uploads(Bucket=s3.package_bucket).get("Uploads", []))
        body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        return AWSResponse(request.url, 403, {"Content-Type": "application/xml"}, _Raw(body))

    on_part(package_storage(), 2, reject)

    run_worker(redis_queue)

    assert [upload["Key"] for upload in seen[0]] == [package_key(job_id)]  # it was in progress
    assert_failed_with_storage_error(api, job_id, "AccessDenied")
    assert s3.keys(prefix="packages/") == []
    assert s3.multipart_uploads() == []  # aborted, not left to a lifecycle rule
    assert work_files() == []
    assert_slot_free(api)


class _Raw:
    """The raw body of a canned botocore response."""

    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **kwargs):
        yield self.body


# --- a full local disk -------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 2 MiB tmpfs; writes past it fail with ENOSPC (root can mount it here)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the test runs as root on this kind of machine): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def full_disk_setup(settings, tmp_path, tiny_disk, tenant):
    """Packages (MEDIA_ROOT) on the tiny disk; the catalog elsewhere, with a 3 MiB version."""
    settings.MEDIA_ROOT = tiny_disk
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "catalog")}},
    }
    big_version(tenant, 3 * MB)
    return tiny_disk


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def test_full_disk_while_packaging_fails_the_job(full_disk_setup, api, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["big"]}})

    run_worker(redis_queue)

    assert_failed_with_storage_error(api, job_id, "No space left on device")
    assert files_under(full_disk_setup) == []  # neither MEDIA_ROOT/.partial nor packages/
    assert shutil.disk_usage(full_disk_setup).used < 64 * 1024
    assert_slot_free(api)


def test_full_disk_while_publishing_from_another_disk_leaves_no_truncated_package(full_disk_setup, settings, tmp_path, api, redis_queue, django_capture_on_commit_callbacks):
    settings.PACKAGE_WORK_DIR = str(tmp_path / "work")  # another disk: publishing copies
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["big"]}})

    run_worker(redis_queue)

    assert_failed_with_storage_error(api, job_id, "No space left on device")
    assert files_under(full_disk_setup) == []  # the half-copied package was removed
    assert work_files() == []
    assert_slot_free(api)


def test_s3_server_killed_while_an_import_stores_files_fails_the_import(s3, api, tenant, other_tenant, redis_queue, django_capture_on_commit_callbacks):
    ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="claims", service__name="triage", version="0.1.0")
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["claims"]}})
    run_worker(redis_queue)
    package = s3.read(package_key(job_id))
    Folder.objects.create(tenant=other_tenant, name="claims")
    dest = SparkClient(other_tenant.slug, make_api_key(other_tenant, name="importer"))

    def post_import():
        entity = {"inputs": {"services_modify": [{"service_uri_source": "claims/triage", "service_uri_destination": None, "update_version_type": "minor"}]}}
        with django_capture_on_commit_callbacks(execute=True):
            response = dest.post(dest.api("import"), {
                "importRequestEntity": json.dumps(entity),
                "file": SimpleUploadedFile("pkg.zip", package, "application/zip"),
            }, format="multipart")
        assert response.status_code == 200, response.json()
        return response.json()["id"]

    import_id = post_import()
    killed = []

    def kill(request, **kwargs):
        if "/catalog/" in request.url and not killed:
            killed.append(s3.server.stop())

    default_storage.connection.meta.client.meta.events.register("before-send.s3.PutObject", kill)
    queues = [django_rq.get_queue("exports"), django_rq.get_queue("imports")]
    with django_capture_on_commit_callbacks(execute=True):
        SimpleWorker(queues, connection=queues[0].connection).work(burst=True)

    assert killed
    status = dest.get(dest.api(f"import/{import_id}/status")).json()
    assert status["status"] == "failed", status
    assert status["errors"][0]["code"] == "STORAGE_ERROR"
    assert "Could not connect to the endpoint URL" in status["errors"][0]["message"]
    assert "nothing was imported" in status["errors"][0]["message"]
    assert not ServiceVersion.objects.filter(service__folder__tenant=other_tenant).exists()
    s3.server.start()
    s3.client.create_bucket(Bucket=s3.bucket)
    post_import()  # the tenant's import slot is free
