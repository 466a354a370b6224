"""Import through the API and a real worker: round trips, every services_existing mode, dry runs, all or nothing."""
import hashlib
import io
import json
import shutil
import zipfile
import zlib
from datetime import timedelta
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.core.management import call_command
from django.utils import timezone

from exports.imports.apply import import_job_run
from exports.imports.services import import_job_create, import_job_rerun
from exports.lifecycle import job_cancel, job_start
from exports.models import ImportJob, JobStatus
from sparkexport.errors import Conflict
from tenants.callers import Caller
from tenants.models import Service, ServiceVersion
from tests.conftest import SparkClient
from tests.factories import ServiceVersionFactory, make_api_key
from tests.imports.conftest import export_all, run_workers

pytestmark = pytest.mark.django_db

def post_import(api, capture, package: bytes, entity: dict, entity_as_part=False):
    entity_text = json.dumps(entity)
    data = {
        "importRequestEntity": (
            SimpleUploadedFile("entity.json", entity_text.encode(), "application/json") if entity_as_part else entity_text
        ),
        "file": SimpleUploadedFile("whatever-name.zip", package, "application/zip"),
    }
    with capture(execute=True):
        return api.post(api.api("import"), data, format="multipart")


def import_and_run(api, capture, package, entity) -> dict:
    response = post_import(api, capture, package, entity)
    assert response.status_code == 200, response.json()
    with capture(execute=True):  # the worker's on_commit work, inside this test's transaction
        run_workers()
    return api.get(api.api(f"import/{response.json()['id']}/status")).json()


def modify(*pairs, kind="minor"):
    return {"services_modify": [{"service_uri_source": s, "service_uri_destination": d, "update_version_type": kind} for s, d in pairs]}


def catalog_state(tenant) -> tuple:
    """Rows and stored files of a tenant's catalog, to prove an import left no trace."""
    versions = ServiceVersion.objects.filter(service__folder__tenant=tenant)
    files = sorted(str(p) for p in Path(settings.MEDIA_ROOT, "catalog").rglob("*") if p.is_file())
    return (Service.objects.filter(folder__tenant=tenant).count(), versions.count(), files)


def members(package: bytes) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(package))
    return {name: archive.read(name) for name in archive.namelist() if not name.endswith(".json")}


def test_round_trip_gives_byte_identical_workbooks_and_neuron_packages(source, dest, other_tenant, django_capture_on_commit_callbacks):
    status = import_and_run(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/quote", None), ("pricing/risk", None), ("claims/triage", None))})

    assert status["status"] == "closed", status
    assert status["errors"] is None
    assert [s["status"] for s in status["outputs"]["services"]] == ["added"] * 3
    assert len(status["outputs"]["service_versions"]) == 4
    again = export_all(dest, django_capture_on_commit_callbacks)
    assert members(again) == members(source)
    assert ImportJob.objects.get().upload.name  # kept for re-runs until exports_purge
    for version in ServiceVersion.objects.filter(service__folder__tenant=other_tenant):
        # Recorded from the package's ZIP headers, checked as the members were read.
        assert version.workbook_crc32 == zlib.crc32(version.workbook.read())
        assert version.neuron_crc32 == zlib.crc32(version.neuron.read())


def test_source_version_ids_are_kept_where_free(source, dest, tenant, django_capture_on_commit_callbacks):
    source_ids = {str(v) for v in ServiceVersion.objects.filter(service__folder__tenant=tenant).values_list("version_id", flat=True)}
    ServiceVersion.objects.filter(service__folder__tenant=tenant, service__name="triage").delete()

    status = import_and_run(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("claims/triage", None), ("pricing/quote", None))})

    rows = {row["service_uri_source"]: row for row in status["outputs"]["service_versions"]}
    assert rows["claims/triage[0.1.0]"]["version_id_destination"] == rows["claims/triage[0.1.0]"]["version_id_source"]
    assert rows["pricing/quote[1.0.0]"]["version_id_destination"] not in source_ids  # taken in tenant acme


def test_import_into_a_remapped_destination(source, dest, other_tenant, django_capture_on_commit_callbacks):
    status = import_and_run(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/quote", "claims/quote-copy"))})

    assert status["outputs"]["services"][0]["service_uri_destination"] == "claims/quote-copy"
    copy = Service.objects.get(folder__tenant=other_tenant, name="quote-copy")
    assert copy.folder.name == "claims"
    assert sorted(copy.versions.values_list("version", flat=True)) == ["1.0.0", "1.1.0"]
    assert status["warnings"] == [
        {"code": "SERVICE_NOT_SELECTED", "message": "claims/triage is in the package but not in services_modify, so it was not imported."},
        {"code": "SERVICE_NOT_SELECTED", "message": "pricing/risk is in the package but not in services_modify, so it was not imported."},
    ]


@pytest.fixture
def existing_quote(other_tenant):
    return ServiceVersionFactory(service__folder__tenant=other_tenant, service__folder__name="pricing", service__name="quote", version="1.4.2").service


def test_abort_refuses_an_existing_destination_and_changes_nothing(source, dest, other_tenant, existing_quote, django_capture_on_commit_callbacks):
    before = catalog_state(other_tenant)

    response = post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/quote", None)), "services_existing": "abort"})

    assert response.status_code == 409
    assert response.json()["code"] == "SERVICE_EXISTS"
    assert "pricing/quote" in response.json()["message"]
    assert catalog_state(other_tenant) == before
    assert not ImportJob.objects.exists()


def test_replace_swaps_the_versions_of_an_existing_service(source, dest, existing_quote, django_capture_on_commit_callbacks):
    old_files = [Path(v.workbook.path) for v in existing_quote.versions.all()]

    status = import_and_run(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/quote", None)), "services_existing": "replace"})

    assert status["outputs"]["services"][0]["status"] == "replaced"
    assert sorted(existing_quote.versions.values_list("version", flat=True)) == ["1.0.0", "1.1.0"]
    assert not any(path.exists() for path in old_files)


def test_add_version_appends_with_bumped_numbers(source, dest, existing_quote, django_capture_on_commit_callbacks):
    status = import_and_run(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/quote", None), kind="minor"), "services_existing": "add_version"})

    assert [row["version_destination"] for row in status["outputs"]["service_versions"]] == ["1.5.0", "1.6.0"]
    assert sorted(existing_quote.versions.values_list("version", flat=True)) == ["1.4.2", "1.5.0", "1.6.0"]


def test_add_version_with_major_and_patch(source, dest, existing_quote, django_capture_on_commit_callbacks):
    plan = post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/quote", None), kind="major"), "services_existing": "add_version", "dry_run": True}).json()
    assert [r["version_destination"] for r in plan["outputs"]["service_versions"]] == ["2.0.0", "3.0.0"]
    plan = post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/quote", None), kind="patch"), "services_existing": "add_version", "dry_run": True}).json()
    assert [r["version_destination"] for r in plan["outputs"]["service_versions"]] == ["1.4.3", "1.4.4"]


def test_skip_leaves_an_existing_service_untouched(source, dest, other_tenant, existing_quote, django_capture_on_commit_callbacks):
    status = import_and_run(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/quote", None), ("claims/triage", None)), "services_existing": "skip"})

    statuses = {row["service_uri_destination"]: row["status"] for row in status["outputs"]["services"]}
    assert statuses == {"pricing/quote": "skipped", "claims/triage": "added"}
    assert list(existing_quote.versions.values_list("version", flat=True)) == ["1.4.2"]


def test_dry_run_answers_the_plan_and_writes_nothing(source, dest, other_tenant, existing_quote, django_capture_on_commit_callbacks, redis_queue):
    before = catalog_state(other_tenant)

    response = post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/quote", None), ("claims/triage", "claims/triage-2")), "services_existing": "add_version", "dry_run": True})

    plan = response.json()
    assert response.status_code == 200
    assert plan["dry_run"] is True and plan["status"] == "closed"
    assert [(r["service_uri_destination"], r["status"]) for r in plan["outputs"]["service_versions"]] == [
        ("pricing/quote[1.5.0]", "added"),
        ("pricing/quote[1.6.0]", "added"),
        ("claims/triage-2[0.1.0]", "added"),
    ]
    assert catalog_state(other_tenant) == before
    assert django_rq.get_queue("imports").job_ids == []
    assert ImportJob.objects.get().upload.name == ""


def test_json_part_for_the_request_entity_is_accepted(source, dest, django_capture_on_commit_callbacks):
    response = post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("claims/triage", None)), "dry_run": True}, entity_as_part=True)
    assert response.status_code == 200, response.json()


def test_a_json_typed_part_without_a_file_name_is_accepted(source, dest, django_capture_on_commit_callbacks):
    """As clients generated from the schema send importRequestEntity (encoding: application/json)."""
    boundary = "sparkexport-boundary"
    entity = json.dumps({"inputs": modify(("claims/triage", None)), "dry_run": True})
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="importRequestEntity"\r\n'
        f"Content-Type: application/json\r\n\r\n{entity}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="package.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode() + source + f"\r\n--{boundary}--\r\n".encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = dest.post(dest.api("import"), body, content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 200, response.json()
    assert response.json()["dry_run"] is True
    assert response.json()["outputs"]["services"][0]["service_uri_destination"] == "claims/triage"


def test_a_body_that_is_not_multipart_is_refused_in_those_words(dest):
    response = dest.post(dest.api("import"), {"importRequestEntity": {}}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"
    assert "multipart/form-data" in response.json()["message"]


def test_missing_destination_folder_is_refused(source, dest, django_capture_on_commit_callbacks):
    response = post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("claims/triage", "nowhere/triage"))})
    assert response.status_code == 404
    assert response.json()["code"] == "FOLDER_NOT_FOUND"
    assert "nowhere" in response.json()["message"]


def test_a_source_service_not_in_the_package_is_refused(source, dest, django_capture_on_commit_callbacks):
    response = post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/unknown", None))})
    assert response.status_code == 404
    assert response.json()["code"] == "SERVICE_NOT_FOUND"
    assert "claims/triage" in response.json()["message"]


def test_upload_over_the_size_limit_is_413(source, dest, other_tenant, django_capture_on_commit_callbacks):
    other_tenant.max_package_bytes = 1000
    other_tenant.save()
    response = post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("claims/triage", None))})
    assert response.status_code == 413
    assert response.json()["code"] == "EXCEEDED_FILE_SIZE"


def test_imports_need_the_imports_permission(source, other_tenant, django_capture_on_commit_callbacks):
    exporter = SparkClient(other_tenant.slug, make_api_key(other_tenant, name="exports-only", permissions=["Spark.Exports.json"]))
    response = post_import(exporter, django_capture_on_commit_callbacks, source, {"inputs": modify(("claims/triage", None))})
    assert response.status_code == 403
    assert "Spark.Imports.json" in response.json()["message"]


@pytest.mark.parametrize(
    "entity, field",
    [
        ("not json", "importRequestEntity"),
        (json.dumps({"inputs": {"services_modify": []}}), "services_modify"),
        (json.dumps({"inputs": modify(("a/b", None)), "services_existing": "merge"}), "services_existing"),
    ],
)
def test_bad_request_entities_are_invalid_request(source, dest, entity, field, django_capture_on_commit_callbacks):
    data = {"importRequestEntity": entity, "file": SimpleUploadedFile("p.zip", source)}
    response = dest.post(dest.api("import"), data, format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"
    assert field in response.json()["message"]


def test_a_request_without_the_file_part_is_invalid(dest):
    response = dest.post(dest.api("import"), {"importRequestEntity": json.dumps({"inputs": modify(("a/b", None))})}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["message"]


def test_import_job_limit(source, dest, django_capture_on_commit_callbacks):
    assert post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("claims/triage", None))}).status_code == 200
    refused = post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/risk", None))})
    assert refused.status_code == 429
    assert refused.json()["code"] == "JOB_LIMIT_REACHED"
    assert refused["Retry-After"]


def test_import_status_documents_and_isolation(source, dest, api, django_capture_on_commit_callbacks):
    status = import_and_run(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("claims/triage", None)), "correlation_id": "c-7"})
    assert status["object"] == "import"
    assert status["correlation_id"] == "c-7"
    assert status["status_url"].endswith(f"/globex/api/v4/import/{status['id']}/status")

    tenant_status = dest.get(dest.api("import/status")).json()
    assert tenant_status["recent_imports"][0]["id"] == status["id"]
    assert tenant_status["recent_imports"][0]["data"]["import_status"] == "closed"
    assert tenant_status["tenant"] == {"configuration": {"import_api_job_limit": 1}, "status": {"import_api_jobs_in_progress": 0}}
    assert api.get(api.api(f"import/{status['id']}/status")).status_code == 404


def test_a_failure_half_way_leaves_nothing_behind(source, dest, tenant, other_tenant, django_capture_on_commit_callbacks):
    last = ServiceVersion.objects.get(service__folder__tenant=tenant, service__name="triage")
    ServiceVersion.objects.filter(service__folder__tenant=tenant).delete()  # the ids are free: kept on import
    blocker = Path(settings.MEDIA_ROOT, "catalog", str(last.version_id))
    shutil.rmtree(blocker)  # the deleted source version's files
    blocker.write_text("a file where the last version's folder must go")
    before = catalog_state(other_tenant)

    status = import_and_run(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/quote", None), ("pricing/risk", None), ("claims/triage", None))})

    assert status["status"] == "failed"
    assert status["errors"][0]["code"] == "STORAGE_ERROR"
    assert "nothing was imported" in status["errors"][0]["message"]
    assert catalog_state(other_tenant) == before


def test_cancelled_before_it_runs_the_import_is_skipped(source, dest, other_tenant, django_capture_on_commit_callbacks):
    response = post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("claims/triage", None))})
    job = ImportJob.objects.get(pk=response.json()["id"])
    job_cancel(job, caller=Caller(tenant=job.tenant, label="sue", is_supervisor=True))
    before = catalog_state(other_tenant)

    run_workers()

    assert ImportJob.objects.get(pk=job.pk).status == JobStatus.CANCELLED
    assert catalog_state(other_tenant) == before
    with pytest.raises(Conflict):
        job_cancel(job, caller=Caller(tenant=job.tenant, label="sue", is_supervisor=True))


def test_a_cancel_while_applying_rolls_the_whole_import_back(source, dest, other_tenant, django_capture_on_commit_callbacks):
    response = post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("claims/triage", None), ("pricing/quote", None))})
    before = catalog_state(other_tenant)
    job = job_start(ImportJob, response.json()["id"])
    job_cancel(job, caller=Caller(tenant=job.tenant, label="sue", is_supervisor=True))  # lands before the worker's transaction closes the job

    import_job_run(job)

    assert ImportJob.objects.get(pk=job.pk).status == JobStatus.CANCELLED
    assert catalog_state(other_tenant) == before


def test_rerun_imports_the_stored_upload_again(source, dest, other_tenant, django_capture_on_commit_callbacks):
    first = import_and_run(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("claims/triage", None)), "services_existing": "add_version"})
    caller = Caller(tenant=other_tenant, label="sue", is_supervisor=True)

    with django_capture_on_commit_callbacks(execute=True):
        again = import_job_rerun(ImportJob.objects.get(pk=first["id"]), caller=caller)
    with django_capture_on_commit_callbacks(execute=True):
        run_workers()

    again.refresh_from_db()
    assert again.status == JobStatus.CLOSED
    assert [row["version_destination"] for row in again.outputs["service_versions"]] == ["0.2.0"]


def test_purge_deletes_old_import_uploads(source, dest, django_capture_on_commit_callbacks):
    status = import_and_run(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("claims/triage", None))})
    job = ImportJob.objects.get(pk=status["id"])
    upload = Path(job.upload.path)
    ImportJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(days=8))

    call_command("exports_purge", "--apply", stdout=io.StringIO(), stderr=io.StringIO())

    assert not upload.exists()
    assert ImportJob.objects.get(pk=job.pk).upload.name == ""
    with pytest.raises(Conflict, match="UPLOAD_EXPIRED|kept no upload"):
        import_job_rerun(ImportJob.objects.get(pk=job.pk), caller=Caller(tenant=job.tenant, label="x", is_supervisor=True))


def test_a_requests_temporary_upload_is_moved_into_storage_not_copied(source, dest, other_tenant):
    upload = TemporaryUploadedFile("package.zip", "application/zip", len(source), None)
    upload.write(source)
    upload.flush()
    received = Path(upload.temporary_file_path())
    with upload:
        job = import_job_create(caller=Caller(tenant=other_tenant, label="test", is_supervisor=True), upload=upload,
                                services_modify=modify(("claims/triage", None))["services_modify"],
                                services_existing="abort", enqueue=False)
    assert not received.exists()  # moved: the package was not written a second time
    assert job.upload.read() == source
    assert job.upload_sha256 == hashlib.sha256(source).hexdigest()
