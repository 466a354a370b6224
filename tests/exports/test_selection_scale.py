"""POST export runs the same number of queries for a folder of 10 versions and of 1,000.

The versions are bulk-inserted (no stored files are read: POST export only reads metadata),
so the test takes a few seconds; benchmarks/scale.py times the same request.
"""
import hashlib
import uuid

import pytest

from tenants.models import Folder, Service, ServiceVersion
from tests.query_counts import assert_queries


@pytest.fixture
def high_limit(tenant):
    tenant.export_api_job_limit = 100
    tenant.save(update_fields=["export_api_job_limit"])
    return tenant


def bulk_folder(tenant, name: str, services: int, versions_per_service: int) -> None:
    """A folder of `services × versions_per_service` compiled versions sharing two stored names."""
    folder = Folder.objects.create(tenant=tenant, name=name)
    created = Service.objects.bulk_create(
        [Service(folder=folder, name=f"svc-{s}") for s in range(services)]
    )
    ServiceVersion.objects.bulk_create(
        [
            ServiceVersion(
                service=service,
                version=f"1.{v}.0",
                major=1,
                minor=v,
                patch=0,
                version_id=uuid.uuid4(),
                workbook=f"catalog/{name}/workbook.xlsx",
                workbook_name=f"{service.name}.xlsx",
                workbook_size=50_000,
                workbook_sha256=hashlib.sha256(f"{service.name}:{v}".encode()).hexdigest(),
                neuron=f"catalog/{name}/neuron.zip",
                neuron_size=30_000,
                neuron_sha256=hashlib.sha256(f"{service.name}:{v}:n".encode()).hexdigest(),
            )
            for service in created
            for v in range(versions_per_service)
        ]
    )


def post_folder(api, folder: str):
    response = assert_queries(
        "POST export, by folder", lambda: api.post(api.api("export"), {"inputs": {"folders": [folder]}}, format="json")
    )
    assert response.status_code == 200, response.json()
    return response.json()


def test_post_export_query_count_is_the_same_for_10_and_1000_versions(api, high_limit):
    bulk_folder(high_limit, "small", services=2, versions_per_service=5)
    bulk_folder(high_limit, "large", services=200, versions_per_service=5)
    api.get(api.api("export/status"))  # records the key's last use outside the measurement

    small = post_folder(api, "small")
    large = post_folder(api, "large")

    assert len(small["outputs"]["service_versions"]) == 10
    assert len(large["outputs"]["service_versions"]) == 1000
    assert len(large["outputs"]["services"]) == 200
