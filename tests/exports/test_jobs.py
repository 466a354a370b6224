"""The packaging job, run by a real RQ SimpleWorker (burst, in-process) against real Redis."""
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rq import SimpleWorker

from exports.building import export_job_package
from exports.lifecycle import job_cancel, job_start
from exports.purge import export_package_delete
from exports.models import ExportJob, JobStatus
from exports.packages.writer import PackagingStopped
from tenants.callers import Caller
from tenants.models import ServiceVersion
from tests.factories import ServiceVersionFactory

pytestmark = pytest.mark.django_db


def post_export(api, capture, body) -> str:
    with capture(execute=True):
        response = api.post(api.api("export"), body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["id"]


def run_worker(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def download(api, job_id) -> tuple[dict, bytes]:
    status = api.get(api.api(f"export/{job_id}/status")).json()
    response = api.get(status["outputs"]["files"][0]["file"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    body = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(body)
    return status, body


def work_files() -> list[Path]:
    work_dir = Path(settings.MEDIA_ROOT) / ".partial"
    return list(work_dir.iterdir()) if work_dir.exists() else []


def stored_packages() -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "packages"
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


@pytest.fixture
def catalog(tenant):
    """Two folders, three services, five compiled versions."""
    versions = [
        ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing", service__name="quote", version=v)
        for v in ("1.0.0", "1.2.0")
    ]
    quote = versions[0].service
    versions.append(ServiceVersionFactory(service=quote, version="1.10.0"))
    versions.append(ServiceVersionFactory(service__folder=quote.folder, service__name="risk", version="2.0.0"))
    versions.append(ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="claims", service__name="triage", version="0.1.0"))
    return versions


def test_worker_packages_every_selected_version(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["pricing", "claims"]}})
    assert redis_queue.job_ids == [job_id]

    run_worker(redis_queue)

    status, package = download(api, job_id)
    assert status["status"] == "closed"
    assert status["errors"] is None
    assert status["outputs"]["files"][0]["file_hash"] == hashlib.sha256(package).hexdigest()
    assert status["outputs"]["files"][0]["zip_process_time"] >= 0
    job = ExportJob.objects.get(pk=job_id)
    assert job.file_size == len(package)
    assert status["process_time"] >= job.zip_process_time_ms

    archive = zipfile.ZipFile(io.BytesIO(package))
    assert archive.testzip() is None
    manifest = json.loads(archive.read("manifest.json"))
    assert archive.namelist()[0] == "manifest.json"
    assert manifest["format"] == "sparkexport-package"
    assert manifest["source_tenant"] == "acme"
    assert manifest["service_versions"] == status["outputs"]["service_versions"]
    assert manifest["services"] == status["outputs"]["services"]
    assert [f["path"] for f in manifest["files"]] == sorted(archive.namelist()[1:])
    for listed in manifest["files"]:
        data = archive.read(listed["path"])
        assert (len(data), hashlib.sha256(data).hexdigest()) == (listed["size"], listed["sha256"])
    assert "pricing/quote/1.10.0/neuron.zip" in archive.namelist()
    assert "pricing/quote/1.10.0/quote.xlsx" in archive.namelist()
    assert archive.getinfo("pricing/quote/1.10.0/quote.xlsx").compress_type == zipfile.ZIP_STORED
    assert archive.getinfo("manifest.json").compress_type == zipfile.ZIP_DEFLATED
    metadata = json.loads(archive.read("pricing/quote/1.10.0/version.json"))
    assert metadata["version_id"] == str(catalog[2].version_id)
    assert metadata["workbook"]["sha256"] == catalog[2].workbook_sha256
    assert work_files() == []
    assert stored_packages() == [Path(settings.MEDIA_ROOT) / "packages" / "acme" / f"{job_id}.zip"]


def test_same_selection_gives_a_byte_identical_package(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    hashes = []
    for _ in range(2):
        job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"services": ["pricing/quote"]}, "correlation_id": "run"})
        run_worker(redis_queue)
        status, package = download(api, job_id)
        hashes.append((hashlib.sha256(package).hexdigest(), status["outputs"]["files"][0]["file_hash"]))
        # Delete it, so the second export really writes the package again instead of reusing it.
        export_package_delete(ExportJob.objects.get(pk=job_id))
    assert hashes[0] == hashes[1]
    assert hashes[0][0] == hashes[0][1]


def test_onpremises_package_leaves_out_workbooks(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["claims"]}, "file_filter": "onpremises"})
    run_worker(redis_queue)
    _, package = download(api, job_id)
    names = zipfile.ZipFile(io.BytesIO(package)).namelist()
    assert names == ["manifest.json", "claims/triage/0.1.0/neuron.zip", "claims/triage/0.1.0/version.json"]
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(package)).read("manifest.json"))
    assert manifest["file_filter"] == "onpremises"


def test_a_job_cancelled_before_it_runs_is_skipped(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["claims"]}})
    assert api.patch(api.api(f"export/{job_id}"), {"export_status": "cancelled"}, format="json").json()["status"] == "cancelled"

    run_worker(redis_queue)

    job = ExportJob.objects.get(pk=job_id)
    assert job.status == JobStatus.CANCELLED
    assert not job.package
    assert job.started_at is None


def test_cancel_during_packaging_stops_before_the_next_entry_and_leaves_no_file(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["pricing"]}})
    job = job_start(ExportJob, job_id)
    job_cancel(job, caller=Caller(tenant=job.tenant, label="operator", is_supervisor=True))

    with pytest.raises(PackagingStopped) as stopped:
        export_job_package(job)

    assert stopped.value.reason == "cancelled"
    assert ExportJob.objects.get(pk=job_id).status == JobStatus.CANCELLED
    assert work_files() == []
    assert stored_packages() == []
    assert stored_packages() == []


def test_a_job_past_its_timeout_ends_closed_by_timeout(api, tenant, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["pricing"]}})
    tenant.job_timeout_seconds = 0
    tenant.save()

    run_worker(redis_queue)

    status = api.get(api.api(f"export/{job_id}/status")).json()
    assert status["status"] == "closed_by_timeout"
    assert status["errors"][0]["code"] == "JOB_TIMEOUT"
    assert status["outputs"]["files"] == []
    assert work_files() == []
    assert stored_packages() == []
    assert api.post(api.api("export"), {"inputs": {"folders": ["claims"]}}, format="json").status_code == 200


def test_a_missing_stored_file_fails_the_job_with_the_reason(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["claims"]}})
    catalog[4].neuron.storage.delete(catalog[4].neuron.name)

    run_worker(redis_queue)

    status = api.get(api.api(f"export/{job_id}/status")).json()
    assert status["status"] == "failed"
    assert status["errors"][0]["code"] == "STORAGE_ERROR"
    assert "neuron.zip" in status["errors"][0]["message"]
    assert work_files() == []
    assert stored_packages() == []


@pytest.mark.parametrize("checked_by", ["CRC-32", "sha256"])
def test_a_stored_file_whose_bytes_changed_fails_the_job(
    api, catalog, redis_queue, django_capture_on_commit_callbacks, checked_by
):
    if checked_by == "sha256":  # a version added before CRC-32s were recorded
        ServiceVersion.objects.update(workbook_crc32=None, neuron_crc32=None)
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["claims"]}})
    workbook = catalog[4].workbook
    Path(workbook.path).write_bytes(b"tampered" + Path(workbook.path).read_bytes()[8:])

    run_worker(redis_queue)

    status = api.get(api.api(f"export/{job_id}/status")).json()
    assert status["status"] == "failed"
    assert status["errors"][0]["code"] == "STORED_FILE_CHANGED"
    assert "triage.xlsx" in status["errors"][0]["message"] and checked_by in status["errors"][0]["message"]
    assert work_files() == []
    assert stored_packages() == []
    assert ServiceVersion.objects.get(pk=catalog[4].pk).workbook_crc32 == (None if checked_by == "sha256" else catalog[4].workbook_crc32)


def test_the_first_export_of_an_older_version_records_its_crc32s(
    api, catalog, redis_queue, django_capture_on_commit_callbacks
):
    ServiceVersion.objects.update(workbook_crc32=None, neuron_crc32=None)
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["claims"]}})

    run_worker(redis_queue)

    _, package = download(api, job_id)
    triage = ServiceVersion.objects.get(pk=catalog[4].pk)
    archive = zipfile.ZipFile(io.BytesIO(package))
    assert triage.workbook_crc32 == archive.getinfo("claims/triage/0.1.0/triage.xlsx").CRC
    assert triage.neuron_crc32 == archive.getinfo("claims/triage/0.1.0/neuron.zip").CRC == catalog[4].neuron_crc32
    assert ServiceVersion.objects.filter(workbook_crc32__isnull=True).count() == 4  # the others were not exported


def test_the_worker_enforces_the_size_limit_too(api, tenant, catalog, redis_queue, django_capture_on_commit_callbacks):
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["pricing"]}})
    tenant.max_package_bytes = 20_000
    tenant.save()

    run_worker(redis_queue)

    status = api.get(api.api(f"export/{job_id}/status")).json()
    assert status["status"] == "failed"
    assert status["errors"][0]["code"] == "PACKAGE_TOO_LARGE"
    assert work_files() == []
    assert stored_packages() == []


def test_signed_link_downloads_without_credentials_until_it_expires(api, catalog, redis_queue, django_capture_on_commit_callbacks, client, settings):
    job_id = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["claims"]}, "file_name": "claims.zip"})
    run_worker(redis_queue)
    status, package = download(api, job_id)
    url = status["outputs"]["files"][0]["file"]
    assert url.split("?")[0].endswith(f"/acme/api/v4/export/{job_id}/file/claims.zip")

    anonymous = client.get(url)
    assert anonymous.status_code == 200
    assert b"".join(anonymous.streaming_content) == package
    assert anonymous["Content-Disposition"] == 'attachment; filename="claims.zip"'

    assert client.get(url[:-2] + ("AA" if not url.endswith("AA") else "BB")).status_code == 403
    assert client.get(url.split("?")[0]).status_code == 401
    settings.EXPORT_DOWNLOAD_LINK_TTL = -1
    expired = client.get(url)
    assert expired.status_code == 403
    assert expired.json()["code"] == "INVALID_DOWNLOAD_LINK"


def test_a_signed_link_is_bound_to_its_job(api, catalog, redis_queue, django_capture_on_commit_callbacks, client):
    first = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["claims"]}})
    run_worker(redis_queue)
    second = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["claims"]}})
    run_worker(redis_queue)
    url = api.get(api.api(f"export/{first}/status")).json()["outputs"]["files"][0]["file"]

    assert client.get(url.replace(first, second)).status_code == 403
    assert client.get(url.replace("/acme/", "/globex/")).status_code == 403


def test_a_repeat_export_reuses_the_stored_identical_package(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    first = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["pricing"]}})
    run_worker(redis_queue)
    second = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["pricing"]}, "correlation_id": "again"})
    run_worker(redis_queue)

    a, b = ExportJob.objects.get(pk=first), ExportJob.objects.get(pk=second)
    assert b.status == JobStatus.CLOSED
    assert (b.package.name, b.file_hash, b.content_key) == (a.package.name, a.file_hash, a.content_key)
    assert stored_packages() == [Path(settings.MEDIA_ROOT) / "packages" / "acme" / f"{first}.zip"]
    _, package = download(api, second)
    assert hashlib.sha256(package).hexdigest() == a.file_hash


def test_a_changed_selection_is_packaged_anew(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    first = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["pricing"]}})
    run_worker(redis_queue)
    ServiceVersionFactory(service=catalog[0].service, version="1.11.0")
    second = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["pricing"]}})
    run_worker(redis_queue)

    a, b = ExportJob.objects.get(pk=first), ExportJob.objects.get(pk=second)
    assert a.content_key != b.content_key
    assert a.package.name != b.package.name


def _folder_lookups(queries) -> int:
    """How many times the selection was resolved: its first query looks up the folders."""
    return sum('FROM "tenants_folder"' in query["sql"] for query in queries)


def test_a_repeat_post_skips_resolving_until_the_catalog_changes(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    body = {"inputs": {"folders": ["pricing"]}}
    first = post_export(api, django_capture_on_commit_callbacks, body)  # starts the snapshot tokens
    run_worker(redis_queue)
    post_export(api, django_capture_on_commit_callbacks, body)  # resolves again, and keeps the selection
    with CaptureQueriesContext(connection) as queries:
        repeat = post_export(api, django_capture_on_commit_callbacks, body)
    assert _folder_lookups(queries) == 0
    assert ExportJob.objects.get(pk=repeat).content_key == ExportJob.objects.get(pk=first).content_key

    ServiceVersionFactory(service=catalog[0].service, version="1.11.0")
    with CaptureQueriesContext(connection) as queries:
        changed = post_export(api, django_capture_on_commit_callbacks, body)
    assert _folder_lookups(queries) == 1
    assert ExportJob.objects.get(pk=changed).versions.count() == ExportJob.objects.get(pk=repeat).versions.count() + 1


def test_a_repeat_post_meets_a_lowered_size_limit(api, tenant, catalog, redis_queue, django_capture_on_commit_callbacks):
    body = {"inputs": {"folders": ["pricing"]}}
    for _ in range(2):
        post_export(api, django_capture_on_commit_callbacks, body)
        run_worker(redis_queue)
    tenant.max_package_bytes = 1024
    tenant.save()
    response = api.post(api.api("export"), body, format="json")
    assert response.status_code == 422 and response.json()["code"] == "PACKAGE_TOO_LARGE"


def test_purging_one_of_two_jobs_sharing_a_package_keeps_the_file(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    first = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["claims"]}})
    run_worker(redis_queue)
    second = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["claims"]}, "correlation_id": "b"})
    run_worker(redis_queue)

    assert export_package_delete(ExportJob.objects.get(pk=first)) == 0
    assert download(api, second)[0]["status"] == "closed"
    assert export_package_delete(ExportJob.objects.get(pk=second)) > 0
    assert stored_packages() == []


def test_a_repeat_post_is_closed_at_once_without_a_worker_or_a_slot(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    first = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["claims"]}})
    run_worker(redis_queue)
    busy = post_export(api, django_capture_on_commit_callbacks, {"inputs": {"folders": ["pricing"]}})  # takes the only slot

    with django_capture_on_commit_callbacks() as enqueued:
        repeat = api.post(api.api("export"), {"inputs": {"folders": ["claims"]}}, format="json")

    assert repeat.status_code == 200
    assert repeat.json()["status"] == "closed"
    assert repeat.json()["outputs"]["files"][0]["file_hash"] == ExportJob.objects.get(pk=first).file_hash
    assert enqueued == []
    assert ExportJob.objects.get(pk=busy).status == JobStatus.CREATED
