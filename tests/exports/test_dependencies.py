"""Exports and Xcalls: outputs.dependencies[], `include_dependencies` and its closure, the
manifest's rows, and the errors of a closure that cannot be made."""
import io
import json
import zipfile
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from rq import SimpleWorker

from exports.models import ExportJob, JobStatus
from exports.services import export_job_rerun
from tenants.callers import Caller
from tenants.demo import make_demo_neuron
from tenants.models import Folder, Service, ServiceVersion
from tenants.services import service_version_add
from tests.exports.api_helpers import assert_error, post_export, versions_of
from tests.factories import ServiceVersionFactory
from tests.query_counts import assert_queries
from tests.tenants.workbooks import sheets_workbook

pytestmark = pytest.mark.django_db


def add(tenant, uri: str, version: str = "1.0.0", calls=(), **kwargs) -> ServiceVersion:
    folder_name, service_name = uri.split("/")
    folder, _ = Folder.objects.get_or_create(tenant=tenant, name=folder_name)
    service, _ = Service.objects.get_or_create(folder=folder, name=service_name)
    return ServiceVersionFactory(service=service, version=version, calls=calls, **kwargs)


@pytest.fixture
def chain(tenant, high_limit):
    """motor/quote calls motor/rating, which calls motor/rate-table[1] (two versions)."""
    return {
        "quote": add(tenant, "motor/quote", calls=["motor/rating"]),
        "rating": add(tenant, "motor/rating", calls=["motor/rate-table[1]"]),
        "table-1.0": add(tenant, "motor/rate-table", "1.0.0"),
        "table-1.1": add(tenant, "motor/rate-table", "1.1.0"),
    }


def dependencies(body) -> list[tuple]:
    return [
        (row["service_uri_source"], row["xcall"], row["dynamic"], row["resolved_service_uri"], row["included"])
        for row in body["outputs"]["dependencies"]
    ]


def export(api, *services, **options):
    response = post_export(api, {"inputs": {"services": list(services)}, **options})
    assert response.status_code == 200, response.json()
    return response.json()


# --- outputs.dependencies without the option ------------------------------------------------


def test_without_the_option_the_package_is_the_selection_and_its_xcalls_are_listed(api, chain):
    body = export(api, "motor/quote")
    assert versions_of(body) == ["motor/quote[1.0.0]"]
    assert body["outputs"]["dependencies"] == [
        {
            "service_uri_source": "motor/quote[1.0.0]",
            "version_id_source": str(chain["quote"].version_id),
            "xcall": "motor/rating",
            "dynamic": False,
            "resolved_service_uri": "motor/rating[1.0.0]",
            "resolved_version_id": str(chain["rating"].version_id),
            "included": False,
        }
    ]
    assert ExportJob.objects.get(pk=body["id"]).include_dependencies is False


def test_include_dependencies_false_and_null_change_nothing(api, chain):
    for value in (False, None):
        body = export(api, "motor/quote", include_dependencies=value)
        assert versions_of(body) == ["motor/quote[1.0.0]"]


def test_an_unresolved_xcall_without_the_option_is_a_row_not_an_error(api, tenant, high_limit):
    add(tenant, "motor/quote", calls=["motor/missing"])
    body = export(api, "motor/quote")
    assert dependencies(body) == [("motor/quote[1.0.0]", "motor/missing", False, None, False)]
    assert body["outputs"]["dependencies"][0]["resolved_version_id"] is None


def test_a_dependency_selected_anyway_is_included(api, chain):
    body = export(api, "motor/quote", "motor/rating")
    assert dependencies(body) == [
        ("motor/quote[1.0.0]", "motor/rating", False, "motor/rating[1.0.0]", True),
        ("motor/rating[1.0.0]", "motor/rate-table[1]", False, "motor/rate-table[1.1.0]", False),
    ]


# --- the closure ----------------------------------------------------------------------------


def test_include_dependencies_exports_the_transitive_closure(api, chain):
    body = export(api, "motor/quote", include_dependencies=True)
    # The prefix [1] reaches the highest 1.x version only, as the Xcall does when it runs.
    assert versions_of(body) == ["motor/quote[1.0.0]", "motor/rate-table[1.1.0]", "motor/rating[1.0.0]"]
    assert dependencies(body) == [
        ("motor/quote[1.0.0]", "motor/rating", False, "motor/rating[1.0.0]", True),
        ("motor/rating[1.0.0]", "motor/rate-table[1]", False, "motor/rate-table[1.1.0]", True),
    ]
    job = ExportJob.objects.get(pk=body["id"])
    assert job.include_dependencies is True and job.versions.count() == 3


def test_a_cycle_ends_and_each_version_is_exported_once(api, tenant, high_limit):
    add(tenant, "loop/a", calls=["loop/b"])
    add(tenant, "loop/b", calls=["loop/a", "loop/b"])  # and itself
    body = export(api, "loop/a", include_dependencies=True)
    assert versions_of(body) == ["loop/a[1.0.0]", "loop/b[1.0.0]"]
    assert dependencies(body) == [
        ("loop/a[1.0.0]", "loop/b", False, "loop/b[1.0.0]", True),
        ("loop/b[1.0.0]", "loop/a", False, "loop/a[1.0.0]", True),
        ("loop/b[1.0.0]", "loop/b", False, "loop/b[1.0.0]", True),
    ]


def test_a_diamond_exports_its_base_once(api, tenant, high_limit):
    add(tenant, "d/top", calls=["d/left", "d/right"])
    add(tenant, "d/left", calls=["d/base"])
    add(tenant, "d/right", calls=["d/base[2]"])
    add(tenant, "d/base", "2.0.0")
    body = export(api, "d/top", include_dependencies=True)
    assert versions_of(body) == ["d/base[2.0.0]", "d/left[1.0.0]", "d/right[1.0.0]", "d/top[1.0.0]"]
    assert len(body["outputs"]["dependencies"]) == 4


def test_every_reference_form_resolves(api, tenant, high_limit):
    exact = add(tenant, "forms/by-version", "1.0.0")
    add(tenant, "forms/by-version", "2.0.0")
    by_service = add(tenant, "forms/by-service", "1.0.0")
    add(tenant, "forms/root", calls=[f"version/{exact.version_id}", f"service/{by_service.service.service_id}",
                                     "folders/forms/services/by-service[1.0]"])
    body = export(api, "forms/root", include_dependencies=True)
    assert versions_of(body) == ["forms/by-service[1.0.0]", "forms/by-version[1.0.0]", "forms/root[1.0.0]"]
    assert [row["resolved_service_uri"] for row in body["outputs"]["dependencies"]] == [
        "forms/by-service[1.0.0]", "forms/by-service[1.0.0]", "forms/by-version[1.0.0]"
    ]


def test_version_filter_latest_applies_to_the_selection_not_to_dependencies(api, tenant, high_limit):
    add(tenant, "m/quote", "1.0.0", calls=["m/table[1.0]"])
    add(tenant, "m/quote", "2.0.0", calls=["m/table[1.0]"])
    add(tenant, "m/table", "1.0.0")
    add(tenant, "m/table", "3.0.0")
    body = export(api, "m/quote", version_filter="latest", include_dependencies=True)
    assert versions_of(body) == ["m/quote[2.0.0]", "m/table[1.0.0]"]


def test_a_dynamic_xcall_is_reported_and_never_followed(api, tenant, high_limit, tmp_path):
    workbook = sheets_workbook(tmp_path / "quote.xlsx", {"Calc": {
        "A1": '=CS.SPARK_XCALL("m/" & B1, A2)', "A3": '=C.spark_xcall("m/table", A2)'}})
    add(tenant, "m/table")
    service_version_add(tenant=tenant, folder="m", service="quote", version="1.0.0", workbook_path=workbook,
                        neuron_path=_neuron(tmp_path))
    body = export(api, "m/quote", include_dependencies=True)
    assert versions_of(body) == ["m/quote[1.0.0]", "m/table[1.0.0]"]
    assert dependencies(body) == [
        ("m/quote[1.0.0]", '"m/"&B1', True, None, False),
        ("m/quote[1.0.0]", "m/table", False, "m/table[1.0.0]", True),
    ]


def _neuron(tmp_path):
    path = tmp_path / "neuron.zip"
    path.write_bytes(make_demo_neuron("quote", "1.0.0"))
    return path


# --- what refuses a closure -----------------------------------------------------------------


def test_an_unresolved_xcall_refuses_the_request_before_any_job_exists(api, tenant, high_limit):
    add(tenant, "motor/quote", calls=["motor/rating"])
    rating = add(tenant, "motor/rating", calls=["motor/rate-table[2]", "motor/gone"])
    add(tenant, "motor/rate-table", "1.0.0")
    response = post_export(api, {"inputs": {"services": ["motor/quote"]}, "include_dependencies": True})
    body = assert_error(response, 422, "DEPENDENCY_NOT_FOUND", "motor/rating[1.0.0]", "motor/gone", "include_dependencies")
    assert body["details"] == {"dependencies": [
        {"service_uri_source": "motor/rating[1.0.0]", "version_id_source": str(rating.version_id), "xcall": "motor/gone"},
        {"service_uri_source": "motor/rating[1.0.0]", "version_id_source": str(rating.version_id),
         "xcall": "motor/rate-table[2]"},
    ]}
    assert not ExportJob.objects.exists()


def test_a_dependency_of_another_tenant_is_not_found(api, tenant, other_tenant, high_limit):
    add(other_tenant, "motor/rating")
    add(tenant, "motor/quote", calls=["motor/rating"])
    response = post_export(api, {"inputs": {"services": ["motor/quote"]}, "include_dependencies": True})
    assert_error(response, 422, "DEPENDENCY_NOT_FOUND")


def test_an_uncompiled_dependency_is_named(api, tenant, high_limit):
    add(tenant, "motor/quote", calls=["motor/rating"])
    add(tenant, "motor/rating", compiled=False)
    response = post_export(api, {"inputs": {"services": ["motor/quote"]}, "include_dependencies": True})
    assert_error(response, 422, "NEURON_NOT_COMPILED", "motor/rating[1.0.0]")


def test_versions_added_before_xcalls_were_recorded_are_read_for_a_closure(api, chain):
    ServiceVersion.objects.update(xcalls_scanned_at=None)
    chain["quote"].xcalls.all().delete()
    chain["rating"].xcalls.all().delete()
    without = export(api, "motor/quote")
    assert without["outputs"]["dependencies"] == []  # a request without the option reads no workbook
    assert not ServiceVersion.objects.filter(xcalls_scanned_at__isnull=False).exists()
    body = export(api, "motor/quote", include_dependencies=True)
    assert versions_of(body) == ["motor/quote[1.0.0]", "motor/rate-table[1.1.0]", "motor/rating[1.0.0]"]
    assert chain["rating"].xcalls.get().reference == "motor/rate-table[1]"


def test_an_unreadable_workbook_in_a_closure_is_refused_by_name(api, chain):
    rating = chain["rating"]
    ServiceVersion.objects.filter(pk=rating.pk).update(xcalls_scanned_at=None)
    rating.xcalls.all().delete()
    with open(rating.workbook.path, "wb") as damaged:
        damaged.write(b"not a workbook")
    response = post_export(api, {"inputs": {"services": ["motor/quote"]}, "include_dependencies": True})
    body = assert_error(response, 422, "DEPENDENCIES_UNKNOWN", "motor/rating[1.0.0]")
    assert body["details"] == {"service_versions": ["motor/rating[1.0.0]"]}
    assert not ExportJob.objects.exists()


# --- the package, reuse, re-runs --------------------------------------------------------------


def run_and_download(api, redis_queue, capture, **options) -> tuple[dict, dict]:
    with capture(execute=True):
        body = export(api, "motor/quote", **options)
    SimpleWorker([redis_queue], connection=redis_queue.connection).work(burst=True)
    status = api.get(body["status_url"]).json()
    assert status["status"] == JobStatus.CLOSED, status
    package = b"".join(api.get(status["outputs"]["files"][0]["file"]).streaming_content)
    archive = zipfile.ZipFile(io.BytesIO(package))
    return status, json.loads(archive.read("manifest.json")) | {"names": archive.namelist()}


def test_the_manifest_holds_the_rows_and_the_installation(
    api, chain, redis_queue, django_capture_on_commit_callbacks, settings
):
    settings.INSTALLATION_NAME = "eu-prod"
    status, manifest = run_and_download(api, redis_queue, django_capture_on_commit_callbacks, include_dependencies=True)
    assert manifest["dependencies"] == status["outputs"]["dependencies"]
    assert len(manifest["dependencies"]) == 2
    assert manifest["source_installation"] == "eu-prod"
    assert "motor/rate-table/1.1.0/neuron.zip" in manifest["names"]
    assert "motor/rate-table/1.0.0/neuron.zip" not in manifest["names"]


def test_a_new_dependency_version_makes_a_new_package(
    api, tenant, chain, redis_queue, django_capture_on_commit_callbacks
):
    first, _ = run_and_download(api, redis_queue, django_capture_on_commit_callbacks)
    repeat = export(api, "motor/quote")
    assert repeat["status"] == JobStatus.CLOSED  # the identical package, reused at once
    add(tenant, "motor/rating", "1.1.0", calls=["motor/rate-table[1]"])
    changed = export(api, "motor/quote")
    assert changed["status"] == JobStatus.CREATED  # the rows changed, so the manifest does
    assert changed["outputs"]["dependencies"][0]["resolved_service_uri"] == "motor/rating[1.1.0]"
    assert first["outputs"]["dependencies"][0]["resolved_service_uri"] == "motor/rating[1.0.0]"


def test_a_rerun_keeps_the_option(api, chain):
    job = ExportJob.objects.get(pk=export(api, "motor/quote", include_dependencies=True)["id"])
    again = export_job_rerun(job, caller=Caller(tenant=job.tenant, label="admin", is_supervisor=True))
    assert again.include_dependencies is True and again.versions.count() == 3


def test_the_option_is_part_of_the_idempotent_request(api, chain):
    headers = {"HTTP_IDEMPOTENCY_KEY": "deploy-42"}
    post_export(api, {"inputs": {"services": ["motor/quote"]}}, **headers)
    response = post_export(api, {"inputs": {"services": ["motor/quote"]}, "include_dependencies": True}, **headers)
    assert_error(response, 422, "IDEMPOTENCY_KEY_REUSED")


def test_export_run_includes_dependencies(tenant, chain, tmp_path):
    output = tmp_path / "package.zip"
    call_command("export_run", tenant.slug, "--service", "motor/quote",
                 "--include-dependencies", "-o", str(output), stdout=StringIO(), stderr=StringIO())
    names = zipfile.ZipFile(output).namelist()
    assert {"motor/rating/1.0.0/neuron.zip", "motor/rate-table/1.1.0/neuron.zip"} <= set(names)


def test_a_closure_costs_queries_per_level_not_per_version(api, tenant, high_limit):
    def fan(name, width):
        for i in range(width):
            add(tenant, f"{name}/leaf-{i}")
        add(tenant, f"{name}/root", calls=[f"{name}/leaf-{i}" for i in range(width)])

    fan("narrow", 2)
    fan("wide", 12)
    api.get(api.api("export/status"))
    for name in ("narrow", "wide"):
        response = assert_queries("POST export, a closure two levels deep",
                                  lambda: post_export(api, {"inputs": {"services": [f"{name}/root"]},
                                                            "include_dependencies": True}))
        assert response.status_code == 200


def test_the_admin_shows_the_option_and_what_each_version_calls(api, chain, admin_client):
    job = export(api, "motor/quote", include_dependencies=True)
    page = admin_client.get(reverse("admin:exports_exportjob_change", args=[job["id"]])).content.decode()
    assert "Include dependencies" in page
    assert "motor/rate-table[1]" in page and "motor/rate-table[1.1.0]" in page  # the Xcall and what it reaches
