"""skip_unchanged: a package version whose files equal a version of the destination service is not
imported again, with every services_existing mode; a re-run writes nothing."""
import pytest

from exports.models import ImportJob
from tenants.models import ServiceVersion
from tests.factories import ServiceVersionFactory
from tests.imports.test_import_api import catalog_state, import_and_run, modify, post_import

pytestmark = pytest.mark.django_db


def rows(status) -> list[tuple]:
    return [(r["service_uri_source"], r["service_uri_destination"], r["status"]) for r in status["outputs"]["service_versions"]]


def service_statuses(status) -> dict:
    return {r["service_uri_destination"]: r["status"] for r in status["outputs"]["services"]}


def quote_versions(tenant) -> dict[str, str]:
    versions = ServiceVersion.objects.filter(service__folder__tenant=tenant, service__name="quote")
    return {v.version: str(v.version_id) for v in versions}


@pytest.fixture
def run(dest, django_capture_on_commit_callbacks, source):
    def run(entity: dict, package: bytes = source) -> dict:
        status = import_and_run(dest, django_capture_on_commit_callbacks, package, entity)
        assert status["status"] == "closed", status
        return status

    return run


@pytest.mark.parametrize("services_existing", ["abort", "add_version", "replace"])
def test_a_rerun_with_skip_unchanged_creates_nothing(run, other_tenant, services_existing):
    entity = {"inputs": modify(("pricing/quote", None), ("claims/triage", None)), "services_existing": services_existing, "skip_unchanged": True}
    first = run(entity)
    before = catalog_state(other_tenant)

    again = run(entity)

    assert catalog_state(other_tenant) == before  # no row, no stored file
    assert ServiceVersion.objects.filter(service__folder__tenant=other_tenant).count() == 3
    assert service_statuses(again) == {"pricing/quote": "unchanged", "claims/triage": "unchanged"}
    assert rows(again) == [
        ("pricing/quote[1.0.0]", "pricing/quote[1.0.0]", "unchanged"),
        ("pricing/quote[1.1.0]", "pricing/quote[1.1.0]", "unchanged"),
        ("claims/triage[0.1.0]", "claims/triage[0.1.0]", "unchanged"),
    ]
    # Each unchanged row names the existing version: the one the first run created.
    assert [r["version_id_destination"] for r in again["outputs"]["service_versions"]] == [
        r["version_id_destination"] for r in first["outputs"]["service_versions"]
    ]
    assert again["outputs"]["service_versions"][0]["version_destination"] == "1.0.0"


def test_without_skip_unchanged_a_rerun_with_add_version_appends_again(run, other_tenant):
    entity = {"inputs": modify(("claims/triage", None)), "services_existing": "add_version"}
    run(entity)
    again = run(entity)
    assert rows(again) == [("claims/triage[0.1.0]", "claims/triage[0.2.0]", "added")]


def test_add_version_appends_only_what_changed_numbering_from_the_highest(run, other_tenant):
    first = run({"inputs": modify(("pricing/quote[1.0]", None))})

    status = run({"inputs": modify(("pricing/quote", None)), "services_existing": "add_version", "skip_unchanged": True})

    assert service_statuses(status) == {"pricing/quote": "added"}
    assert rows(status) == [
        ("pricing/quote[1.0.0]", "pricing/quote[1.0.0]", "unchanged"),
        ("pricing/quote[1.1.0]", "pricing/quote[1.1.0]", "added"),
    ]
    assert quote_versions(other_tenant)["1.0.0"] == first["outputs"]["service_versions"][0]["version_id_destination"]
    assert sorted(quote_versions(other_tenant)) == ["1.0.0", "1.1.0"]


def test_an_unchanged_version_under_another_number_is_named_by_add_version_not_by_replace(run, other_tenant, tenant):
    """Equal files under 1.4.2: add_version names it; a replace wants the package's numbers."""
    source_version = ServiceVersion.objects.get(service__folder__tenant=tenant, service__name="triage")
    ServiceVersionFactory(service__folder__tenant=other_tenant, service__folder__name="claims", service__name="triage", version="1.4.2")
    copy = ServiceVersion.objects.get(service__folder__tenant=other_tenant, service__name="triage")
    ServiceVersion.objects.filter(pk=copy.pk).update(workbook_sha256=source_version.workbook_sha256, neuron_sha256=source_version.neuron_sha256)
    entity = {"inputs": modify(("claims/triage", None)), "skip_unchanged": True, "dry_run": True}

    appended = run({**entity, "services_existing": "add_version"})
    replaced = run({**entity, "services_existing": "replace"})

    assert rows(appended) == [("claims/triage[0.1.0]", "claims/triage[1.4.2]", "unchanged")]
    assert appended["outputs"]["service_versions"][0]["version_id_destination"] == str(copy.version_id)
    assert rows(replaced) == [("claims/triage[0.1.0]", "claims/triage[0.1.0]", "replaced")]


def test_replace_keeps_unchanged_versions_and_replaces_the_rest(run, other_tenant):
    run({"inputs": modify(("pricing/quote[1.0]", None))})
    kept_id = quote_versions(other_tenant)["1.0.0"]
    ServiceVersionFactory(service__folder__tenant=other_tenant, service__folder__name="pricing", service__name="quote", version="1.4.2")

    status = run({"inputs": modify(("pricing/quote", None)), "services_existing": "replace", "skip_unchanged": True})

    assert service_statuses(status) == {"pricing/quote": "replaced"}
    assert rows(status) == [
        ("pricing/quote[1.0.0]", "pricing/quote[1.0.0]", "unchanged"),
        ("pricing/quote[1.1.0]", "pricing/quote[1.1.0]", "replaced"),
    ]
    assert quote_versions(other_tenant)["1.0.0"] == kept_id
    assert sorted(quote_versions(other_tenant)) == ["1.0.0", "1.1.0"]  # 1.4.2 is gone


def test_abort_refuses_an_existing_service_unless_all_its_versions_are_unchanged(run, dest, other_tenant, django_capture_on_commit_callbacks, source):
    run({"inputs": modify(("pricing/quote[1.0]", None))})

    partly = post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/quote", None)), "skip_unchanged": True})
    wholly = run({"inputs": modify(("pricing/quote[1.0]", None)), "skip_unchanged": True})

    assert partly.status_code == 409
    assert partly.json()["code"] == "SERVICE_EXISTS"
    assert "every package version" in partly.json()["message"]
    assert service_statuses(wholly) == {"pricing/quote": "unchanged"}


def test_skip_still_skips_whole_services(run):
    run({"inputs": modify(("claims/triage", None))})

    status = run({"inputs": modify(("claims/triage", None)), "services_existing": "skip", "skip_unchanged": True})

    assert service_statuses(status) == {"claims/triage": "skipped"}
    assert rows(status) == [("claims/triage[0.1.0]", "claims/triage[0.1.0]", "skipped")]


def test_a_dry_run_shows_the_unchanged_rows(run, other_tenant):
    run({"inputs": modify(("claims/triage", None))})
    before = catalog_state(other_tenant)

    plan = run({"inputs": modify(("claims/triage", None), ("pricing/risk", None)), "skip_unchanged": True, "dry_run": True})

    assert plan["dry_run"] is True
    assert rows(plan) == [
        ("claims/triage[0.1.0]", "claims/triage[0.1.0]", "unchanged"),
        ("pricing/risk[2.0.0]", "pricing/risk[2.0.0]", "added"),
    ]
    assert catalog_state(other_tenant) == before
    assert ImportJob.objects.filter(skip_unchanged=True, dry_run=True).count() == 1
