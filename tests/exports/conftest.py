"""Fixtures of the export API tests: a catalog that trips up string sorting, a second caller,
a supervisor, and a job posted through the API."""
import pytest

from tests.conftest import SparkClient
from tests.exports.api_helpers import make_versions, post_export
from tests.factories import ServiceVersionFactory, make_api_key


@pytest.fixture
def catalog(tenant):
    """finance/pricing with versions that trip up string sorting, and a second service."""
    pricing = make_versions(
        tenant, "finance", "pricing", "1.2.0", "1.2.5", "1.9.0", "1.10.0", "1.20.0", "2.0.0"
    )
    finance = pricing[0].service.folder
    quotes = make_versions(tenant, finance, "quotes", "1.0.0", "1.1.0")
    alpha = make_versions(tenant, "alpha", "zeta", "3.0.0")
    return {"pricing": pricing, "quotes": quotes, "alpha": alpha}


@pytest.fixture
def high_limit(tenant):
    tenant.export_api_job_limit = 100
    tenant.save(update_fields=["export_api_job_limit"])
    return tenant


@pytest.fixture
def second_api(tenant):
    """Another, non-supervisor caller of the same tenant."""
    return SparkClient(tenant.slug, make_api_key(tenant, name="second-key"))


@pytest.fixture
def supervisor_api(tenant):
    return SparkClient(tenant.slug, make_api_key(tenant, name="boss-key", supervisor=True))


@pytest.fixture
def job_id(api, tenant):
    version = ServiceVersionFactory(service__folder__tenant=tenant)
    response = post_export(api, {"inputs": {"version_ids": [str(version.version_id)]}})
    assert response.status_code == 200, response.json()
    return response.json()["id"]
