"""Services whose names differ only in case never share a folder (issue 17, item 6): a
case-insensitive file system would make one of them, so an import and service_version_add refuse
the second with 409 SERVICE_NAME_CONFLICT."""
import pytest

from exports.models import ImportJob
from sparkexport.errors import Conflict
from tenants import services
from tenants.models import Folder, Service
from tests.exports.api_helpers import assert_error
from tests.factories import ServiceFactory
from tests.imports.test_import_api import catalog_state, modify, post_import

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_server_errors")]


@pytest.mark.parametrize("services_existing", ["abort", "replace", "add_version", "skip"])
def test_import_into_a_name_that_differs_only_in_case_is_refused(
    services_existing, source, dest, other_tenant, django_capture_on_commit_callbacks
):
    ServiceFactory(folder=Folder.objects.get(tenant=other_tenant, name="claims"), name="Triage")
    before = catalog_state(other_tenant)
    entity = {"inputs": modify(("claims/triage", None)), "services_existing": services_existing, "dry_run": True}

    response = post_import(dest, django_capture_on_commit_callbacks, source, entity)

    body = assert_error(response, 409, "SERVICE_NAME_CONFLICT", "claims/triage", "claims/Triage")
    assert body["details"] == {"services": ["claims/triage"], "existing": ["claims/Triage"]}
    assert catalog_state(other_tenant) == before
    assert not ImportJob.objects.exists()


def test_two_destinations_that_differ_only_in_case_are_refused(source, dest, django_capture_on_commit_callbacks):
    entity = {"inputs": modify(("claims/triage", "claims/copy"), ("pricing/risk", "claims/COPY")), "dry_run": True}

    response = post_import(dest, django_capture_on_commit_callbacks, source, entity)

    assert_error(response, 400, "INVALID_REQUEST", "claims/copy", "claims/COPY")


def test_service_version_add_refuses_a_name_that_differs_only_in_case(other_tenant, tmp_path):
    from tests.tenants.workbooks import sheets_workbook

    workbook = sheets_workbook(tmp_path / "w.xlsx", {"Sheet1": {"A1": 1}})
    services.service_version_add(tenant=other_tenant, folder="claims", service="triage", version="1.0.0", workbook_path=workbook)

    with pytest.raises(Conflict) as refused:
        services.service_version_add(tenant=other_tenant, folder="claims", service="TRIAGE", version="1.0.0", workbook_path=workbook)

    assert refused.value.code == "SERVICE_NAME_CONFLICT"
    assert "claims/triage" in refused.value.message
    assert list(Service.objects.values_list("name", flat=True)) == ["triage"]
