"""Import refuses versions whose XCALLs reach nothing in the destination as it will be after the
import (MISSING_DEPENDENCY), unless allowed; dynamic calls are warnings; imported versions
record their Xcalls. Packages come from real exports of a source tenant holding the demo chain
(motor/quote → motor/rating → motor/rate-table[1])."""
import hashlib
import io
import json
import tempfile
import zipfile
from pathlib import Path

import pytest

from exports.models import ImportJob
from tenants import demo
from tenants.models import Folder, ServiceVersion, VersionXcall
from tenants.selectors import version_dependencies
from tenants.services import service_version_add
from tests.conftest import SparkClient
from tests.factories import make_api_key
from tests.imports.test_hostile_packages import first_workbook, rezip
from tests.imports.conftest import export_package, run_workers
from tests.imports.test_import_api import catalog_state, import_and_run, modify, post_import
from tests.query_counts import assert_queries
from tests.tenants.workbooks import sheets_workbook

pytestmark = pytest.mark.django_db

REFUSED_QUOTE = {
    "missing_dependencies": [
        {"service_uri_destination": "motor/quote[1.0.0]", "service_uri_source": "motor/quote[1.0.0]",
         "xcall": "motor/rating", "cell": "Xcalls!B2"},
    ]
}


def add_version(tenant, folder, service, version, calls=(), workbook: Path | None = None) -> ServiceVersion:
    """A compiled version added as service_version_add adds it (its Xcalls recorded)."""
    with tempfile.TemporaryDirectory() as scratch:
        if workbook is None:
            workbook = Path(scratch, f"{service}.xlsx")
            workbook.write_bytes(demo.make_demo_workbook(service, version, calls))
        neuron = Path(scratch, "neuron.zip")
        neuron.write_bytes(demo.make_demo_neuron(service, version))
        return service_version_add(
            tenant=tenant, folder=folder, service=service, version=version, workbook_path=workbook, neuron_path=neuron
        )


def add_chain(tenant) -> None:
    for folder, service, version, calls in demo.CHAIN:
        add_version(tenant, folder, service, version, calls)


@pytest.fixture
def chain(tenant, redis_queue):
    """Tenant acme holds the demo chain."""
    add_chain(tenant)
    return tenant


@pytest.fixture
def motor_dest(other_tenant):
    """Tenant globex with an empty folder motor, and an importer's client."""
    Folder.objects.create(tenant=other_tenant, name="motor")
    return SparkClient(other_tenant.slug, make_api_key(other_tenant, name="importer"))


@pytest.fixture
def quote_only(chain, api, django_capture_on_commit_callbacks) -> bytes:
    return export_package(api, django_capture_on_commit_callbacks, {"services": ["motor/quote"]})


@pytest.fixture
def whole_chain(chain, api, django_capture_on_commit_callbacks) -> bytes:
    return export_package(api, django_capture_on_commit_callbacks, {"folders": ["motor"]})


def versions_of(tenant, service: str) -> list[str]:
    return sorted(ServiceVersion.objects.filter(service__folder__tenant=tenant, service__name=service).values_list("version", flat=True))


@pytest.mark.parametrize("dry_run", [True, False])
def test_an_unresolved_xcall_refuses_the_import_before_any_job_exists(quote_only, motor_dest, other_tenant, dry_run, django_capture_on_commit_callbacks):
    before = catalog_state(other_tenant)

    response = post_import(motor_dest, django_capture_on_commit_callbacks, quote_only, {"inputs": modify(("motor/quote", None)), "dry_run": dry_run})

    body = response.json()
    assert response.status_code == 422, body
    assert body["code"] == "MISSING_DEPENDENCY"
    assert body["details"] == REFUSED_QUOTE
    assert "motor/quote[1.0.0] calls 'motor/rating'" in body["message"]
    assert "tenant 'globex'" in body["message"]
    for fix in ("first", "include_dependencies", "allow_missing_dependencies"):
        assert fix in body["message"]
    assert not ImportJob.objects.exists()
    assert catalog_state(other_tenant) == before


def test_allow_missing_dependencies_imports_with_a_warning_each(quote_only, motor_dest, other_tenant, django_capture_on_commit_callbacks):
    entity = {"inputs": modify(("motor/quote", None)), "allow_missing_dependencies": True}

    plan = post_import(motor_dest, django_capture_on_commit_callbacks, quote_only, {**entity, "dry_run": True}).json()
    status = import_and_run(motor_dest, django_capture_on_commit_callbacks, quote_only, entity)

    warning = {
        "code": "MISSING_DEPENDENCY",
        "message": "motor/quote[1.0.0] calls 'motor/rating' (Xcalls!B2), which reaches no service in tenant 'globex': "
        "imported anyway (allow_missing_dependencies); the call fails until that service is imported.",
    }
    assert plan["warnings"] == [warning]
    assert status["status"] == "closed", status
    assert status["warnings"] == [warning]
    assert versions_of(other_tenant, "quote") == ["1.0.0"]


def test_imported_versions_record_their_xcalls(whole_chain, motor_dest, other_tenant, django_capture_on_commit_callbacks):
    status = import_and_run(motor_dest, django_capture_on_commit_callbacks, whole_chain, {"inputs": modify(("motor/quote", None), ("motor/rating", None), ("motor/rate-table", None))})

    assert status["status"] == "closed", status
    assert status["warnings"] == []
    calls = VersionXcall.objects.filter(version__service__folder__tenant=other_tenant)
    assert sorted((str(c.version), c.reference, c.dynamic) for c in calls) == [
        ("motor/quote[1.0.0]", "motor/rating", False),
        ("motor/rating[1.0.0]", "motor/rate-table[1]", False),
    ]
    assert not ServiceVersion.objects.filter(service__folder__tenant=other_tenant, xcalls_scanned_at__isnull=True).exists()
    rating = ServiceVersion.objects.get(service__folder__tenant=other_tenant, service__name="rating")
    [(call, reached)] = version_dependencies(rating)
    assert reached.uri == "motor/rate-table[1.1.0]"


def test_the_worker_takes_the_xcalls_found_at_upload_and_reads_no_workbook_again(whole_chain, motor_dest, other_tenant, monkeypatch, django_capture_on_commit_callbacks):
    response = post_import(motor_dest, django_capture_on_commit_callbacks, whole_chain, {"inputs": modify(("motor/quote", None), ("motor/rating", None), ("motor/rate-table", None))})
    job = ImportJob.objects.get(pk=response.json()["id"])
    assert {path.split("/")[-1]: [call["reference"] for call in calls] for path, calls in job.workbook_xcalls.items()} == {
        "quote.xlsx": ["motor/rating"], "rating.xlsx": ["motor/rate-table[1]"], "rate-table.xlsx": [],
    }
    monkeypatch.setattr("exports.imports.dependencies.workbook_xcalls", lambda source: pytest.fail("a workbook was read again"))

    with django_capture_on_commit_callbacks(execute=True):
        run_workers()

    job.refresh_from_db()
    assert job.status == "closed", job.errors
    assert job.workbook_xcalls is None  # dropped once the versions record them
    calls = VersionXcall.objects.filter(version__service__folder__tenant=other_tenant)
    assert sorted((str(c.version), c.reference, c.cell) for c in calls) == [
        ("motor/quote[1.0.0]", "motor/rating", "Xcalls!B2"),
        ("motor/rating[1.0.0]", "motor/rate-table[1]", "Xcalls!B2"),
    ]


def test_a_job_queued_without_its_xcalls_has_the_worker_read_the_workbooks(whole_chain, motor_dest, other_tenant, django_capture_on_commit_callbacks):
    """As for a job queued before ImportJob.workbook_xcalls existed."""
    response = post_import(motor_dest, django_capture_on_commit_callbacks, whole_chain, {"inputs": modify(("motor/quote", None), ("motor/rating", None), ("motor/rate-table", None))})
    ImportJob.objects.filter(pk=response.json()["id"]).update(workbook_xcalls=None)

    with django_capture_on_commit_callbacks(execute=True):
        run_workers()

    assert ImportJob.objects.get(pk=response.json()["id"]).status == "closed"
    calls = VersionXcall.objects.filter(version__service__folder__tenant=other_tenant)
    assert sorted((str(c.version), c.reference) for c in calls) == [
        ("motor/quote[1.0.0]", "motor/rating"), ("motor/rating[1.0.0]", "motor/rate-table[1]"),
    ]


def test_dependencies_in_the_same_package_satisfy_the_check(whole_chain, motor_dest, other_tenant, django_capture_on_commit_callbacks):
    """The rating and the rate table arrive with the quote: the catalog after the import has them."""
    response = post_import(motor_dest, django_capture_on_commit_callbacks, whole_chain, {"inputs": modify(("motor/quote", None), ("motor/rating", None), ("motor/rate-table", None)), "dry_run": True})

    assert response.status_code == 200, response.json()
    assert response.json()["warnings"] == []


def test_a_dependency_left_out_of_services_modify_does_not_count(whole_chain, motor_dest, django_capture_on_commit_callbacks):
    response = post_import(motor_dest, django_capture_on_commit_callbacks, whole_chain, {"inputs": modify(("motor/quote", None), ("motor/rating", None))})

    assert response.status_code == 422
    assert response.json()["details"]["missing_dependencies"] == [
        {"service_uri_destination": "motor/rating[1.0.0]", "service_uri_source": "motor/rating[1.0.0]",
         "xcall": "motor/rate-table[1]", "cell": "Xcalls!B2"},
    ]


def test_dependencies_already_in_the_destination_satisfy_the_check(quote_only, motor_dest, other_tenant, django_capture_on_commit_callbacks):
    add_version(other_tenant, "motor", "rating", "3.0.0")

    status = import_and_run(motor_dest, django_capture_on_commit_callbacks, quote_only, {"inputs": modify(("motor/quote", None))})

    assert status["status"] == "closed", status
    assert versions_of(other_tenant, "quote") == ["1.0.0"]


@pytest.mark.parametrize(
    "destination_versions, accepted",
    [
        (["1.1.0"], True),
        (["0.9.0", "1.0.5"], True),
        (["2.0.0"], False),
        (["10.0.0"], False),  # "[1]" matches component-wise: 1.x.y, never 10.0.0
        ([], False),
    ],
)
def test_a_version_prefix_reference_needs_a_matching_version(chain, api, motor_dest, other_tenant, destination_versions, accepted, django_capture_on_commit_callbacks):
    package = export_package(api, django_capture_on_commit_callbacks, {"services": ["motor/rating"]})
    for version in destination_versions:
        add_version(other_tenant, "motor", "rate-table", version)

    response = post_import(motor_dest, django_capture_on_commit_callbacks, package, {"inputs": modify(("motor/rating", None)), "dry_run": True})

    assert response.status_code == (200 if accepted else 422), response.json()


@pytest.fixture
def rating_and_new_table(tenant, api, redis_queue, django_capture_on_commit_callbacks) -> bytes:
    """A package of motor/rating 1.0.0 (calling motor/rate-table[1]) and motor/rate-table 2.0.0."""
    add_version(tenant, "motor", "rating", "1.0.0", ("motor/rate-table[1]",))
    add_version(tenant, "motor", "rate-table", "2.0.0")
    return export_package(api, django_capture_on_commit_callbacks, {"folders": ["motor"]})


def test_a_replace_that_removes_the_only_version_a_call_reached_is_refused(rating_and_new_table, motor_dest, other_tenant, django_capture_on_commit_callbacks):
    add_version(other_tenant, "motor", "rate-table", "1.0.0")
    entity = {"inputs": modify(("motor/rating", None), ("motor/rate-table", None)), "dry_run": True}

    replaced = post_import(motor_dest, django_capture_on_commit_callbacks, rating_and_new_table, {**entity, "services_existing": "replace"})
    appended = post_import(motor_dest, django_capture_on_commit_callbacks, rating_and_new_table, {**entity, "services_existing": "add_version"})

    # After the replace rate-table holds only 2.0.0; with add_version, 1.0.0 stays beside 1.1.0.
    assert replaced.status_code == 422
    assert replaced.json()["details"]["missing_dependencies"][0]["xcall"] == "motor/rate-table[1]"
    assert appended.status_code == 200, appended.json()


def test_a_dynamic_reference_is_a_warning_never_an_error(tenant, api, redis_queue, motor_dest, other_tenant, tmp_path, django_capture_on_commit_callbacks):
    workbook = sheets_workbook(tmp_path / "router.xlsx", {"Calls": {"A1": "motor/rating", "B1": "=CS.SPARK_XCALL(A1, A2)"}})
    add_version(tenant, "motor", "router", "1.0.0", workbook=workbook)
    package = export_package(api, django_capture_on_commit_callbacks, {"services": ["motor/router"]})

    status = import_and_run(motor_dest, django_capture_on_commit_callbacks, package, {"inputs": modify(("motor/router", None))})

    assert status["status"] == "closed", status
    assert status["warnings"] == [{
        "code": "DYNAMIC_DEPENDENCY",
        "message": "motor/router[1.0.0] calls the service that 'A1' (Calls!B1) names when the workbook calculates, "
        "so it could not be checked: make sure it exists in tenant 'globex'.",
    }]
    [call] = VersionXcall.objects.filter(version__service__folder__tenant=other_tenant)
    assert (call.reference, call.dynamic) == ("A1", True)


def test_the_worker_checks_again_and_fails_the_job_if_a_dependency_went_away(quote_only, motor_dest, other_tenant, django_capture_on_commit_callbacks):
    rating = add_version(other_tenant, "motor", "rating", "1.0.0")
    response = post_import(motor_dest, django_capture_on_commit_callbacks, quote_only, {"inputs": modify(("motor/quote", None))})
    assert response.status_code == 200, response.json()
    rating.service.delete()  # between the upload and the worker
    before = catalog_state(other_tenant)

    with django_capture_on_commit_callbacks(execute=True):
        run_workers()

    status = motor_dest.get(motor_dest.api(f"import/{response.json()['id']}/status")).json()
    assert status["status"] == "failed"
    assert status["errors"][0]["code"] == "MISSING_DEPENDENCY"
    assert "motor/quote[1.0.0] calls 'motor/rating'" in status["errors"][0]["message"]
    assert status["errors"][0]["message"].endswith("Nothing was imported.")
    assert catalog_state(other_tenant) == before


def test_round_trip_refused_without_the_dependency_then_accepted_once_it_arrived(chain, api, motor_dest, other_tenant, django_capture_on_commit_callbacks):
    """A exports the quote alone; B lacks motor/rating and refuses it. B then imports the rating
    and the rate table (exported from A), and the same quote package is accepted."""
    capture = django_capture_on_commit_callbacks
    quote = export_package(api, capture, {"services": ["motor/quote"]})
    dependencies = export_package(api, capture, {"services": ["motor/rating", "motor/rate-table"]})

    refused = post_import(motor_dest, capture, quote, {"inputs": modify(("motor/quote", None))})
    assert refused.status_code == 422 and refused.json()["details"] == REFUSED_QUOTE

    first = import_and_run(motor_dest, capture, dependencies, {"inputs": modify(("motor/rating", None), ("motor/rate-table", None))})
    assert first["status"] == "closed", first
    then = import_and_run(motor_dest, capture, quote, {"inputs": modify(("motor/quote", None))})

    assert then["status"] == "closed", then
    assert then["warnings"] == []
    quote_version = ServiceVersion.objects.get(service__folder__tenant=other_tenant, service__name="quote")
    [(call, reached)] = version_dependencies(quote_version)
    assert (call.reference, reached.uri) == ("motor/rating", "motor/rating[1.0.0]")


def test_the_dependency_check_runs_the_same_queries_however_many_versions_call(tenant, api, redis_queue, motor_dest, django_capture_on_commit_callbacks):
    """The destination's catalog is read in one query for every XCALL of every version."""
    add_version(tenant, "motor", "quote", "1.0.0", ("motor/rating",))
    one = export_package(api, django_capture_on_commit_callbacks, {"services": ["motor/quote"]})
    for version in ("1.1.0", "1.2.0", "1.3.0"):
        add_version(tenant, "motor", "quote", version, ("motor/rating", f"motor/rate-table[{version[:3]}]", "motor/other"))
    many = export_package(api, django_capture_on_commit_callbacks, {"services": ["motor/quote"]})
    entity = {"inputs": modify(("motor/quote", None)), "allow_missing_dependencies": True, "dry_run": True}
    motor_dest.get(motor_dest.api("import/status"))  # the key's first use is recorded once

    for package in (one, many):
        response = assert_queries("POST import, a dry run with Xcalls", lambda: post_import(motor_dest, django_capture_on_commit_callbacks, package, entity))
        assert response.status_code == 200, response.json()
    assert len(response.json()["warnings"]) == 1 + 3 * 3


def forged(package: bytes, replacements: dict[str, bytes]) -> bytes:
    """The package with members replaced and the manifest re-hashed to match: only their content tells."""
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(package)).read("manifest.json"))
    for entry in manifest["files"]:
        if entry["path"] in replacements:
            data = replacements[entry["path"]]
            entry.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    return rezip(package, replace={**replacements, "manifest.json": json.dumps(manifest).encode()})


def test_a_workbook_that_is_not_one_is_refused_before_its_xcalls_are_trusted(quote_only, motor_dest, other_tenant, django_capture_on_commit_callbacks):
    workbook = first_workbook(quote_only)
    version_json = workbook.rpartition("/")[0] + "/version.json"
    metadata = json.loads(zipfile.ZipFile(io.BytesIO(quote_only)).read(version_json))
    metadata["workbook"] = {"name": metadata["workbook"]["name"]}
    package = forged(quote_only, {workbook: b"not a workbook", version_json: json.dumps(metadata).encode()})

    response = post_import(motor_dest, django_capture_on_commit_callbacks, package, {"inputs": modify(("motor/quote", None)), "allow_missing_dependencies": True})

    assert response.status_code == 422, response.json()
    assert response.json()["code"] == "INVALID_IMPORT_ZIP"
    assert "workbook of motor/quote[1.0.0]" in response.json()["message"]
    assert not ImportJob.objects.exists()
