"""The official cspark SDK (0.3.3), unchanged, against a live server and a real worker process."""
import hashlib
import io
import json
import zipfile

import httpx
import pytest
from cspark.sdk import BaseUrl, Client

from exports.models import ExportJob, JobStatus
from tenants.services import member_add, oauth_client_create
from tests.factories import ServiceVersionFactory, make_api_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture
def catalog(tenant):
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing", service__name="quote", version=version)
    ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="claims", service__name="triage", version="2.0.0")


def sdk_client(live_server, **auth) -> Client:
    return Client(base_url=BaseUrl(url=live_server.url, tenant="acme"), logger=False, **auth)


def assert_package(buffer: bytes, versions: list[str]):
    archive = zipfile.ZipFile(io.BytesIO(buffer))
    manifest = json.loads(archive.read("manifest.json"))
    assert [row["service_uri_source"] for row in manifest["service_versions"]] == versions
    job = ExportJob.objects.get(file_hash=hashlib.sha256(buffer).hexdigest())
    assert job.status == JobStatus.CLOSED
    return job


def test_sdk_exports_describes_and_downloads_with_an_api_key(live_server, tenant, catalog, start_worker):
    start_worker()
    client = sdk_client(live_server, api_key=make_api_key(tenant, name="sdk-key"))

    # The SDK's default version_filter is 'latest'.
    downloads = client.impex.exp(folders=["pricing"], services=["claims/triage"], max_retries=20, retry_interval=0.2)

    assert len(downloads) == 1 and downloads[0].status == 200
    job = assert_package(downloads[0].buffer, ["claims/triage[2.0.0]", "pricing/quote[1.2.0]"])
    assert job.created_by == "sdk-key"
    assert job.source_system == "Spark Python SDK"

    described = client.impex.exports.describe().data
    assert [entry["id"] for entry in described["recent_exports"]] == [str(job.pk)]
    assert described["recent_exports"][0]["data"]["export_status"] == "closed"
    assert described["tenant"]["configuration"]["export_api_job_limit"] == 1

    again = client.impex.exports.download(f"{live_server.url}/acme/api/v4/export/{job.pk}/file/package.zip")
    assert again[0].buffer == downloads[0].buffer


def test_sdk_exports_a_service_that_makes_xcalls_unchanged(live_server, tenant, catalog, start_worker):
    quote = ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="motor", service__name="quote",
                                  calls=["pricing/quote[1.1]"])
    start_worker()
    client = sdk_client(live_server, api_key=make_api_key(tenant, name="sdk-key"))

    downloads = client.impex.exp(services=["motor/quote"], max_retries=20, retry_interval=0.2)

    job = assert_package(downloads[0].buffer, ["motor/quote[1.0.0]"])  # no include_dependencies: as Spark
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(downloads[0].buffer)).read("manifest.json"))
    assert [(row["version_id_source"], row["resolved_service_uri"], row["included"]) for row in manifest["dependencies"]] == [
        (str(quote.version_id), "pricing/quote[1.1.0]", False)
    ]
    assert job.include_dependencies is False


def test_sdk_cancels_a_job_before_a_worker_takes_it(live_server, tenant, catalog, redis_queue):
    client = sdk_client(live_server, api_key=make_api_key(tenant, name="sdk-key"))
    created = client.impex.exports.initiate(services=["pricing/quote[1.1]"], version_filter="all").data
    assert created["status"] == "created"

    cancelled = client.impex.exports.cancel(created["id"]).data

    assert cancelled["id"] == created["id"]
    assert cancelled["status"] == "cancelled"
    assert ExportJob.objects.get(pk=created["id"]).status == JobStatus.CANCELLED


def test_sdk_exports_with_oauth_client_credentials(live_server, tenant, catalog, start_worker):
    member_add(tenant=tenant, username="ci-robot@example.com")
    _, client_id, client_secret = oauth_client_create(tenant=tenant, name="pipeline", username="ci-robot@example.com")
    start_worker()
    # The SDK first sends "Bearer None", gets 401, fetches a token and retries.
    client = sdk_client(live_server, oauth={"client_id": client_id, "client_secret": client_secret})

    downloads = client.impex.exp(services=["pricing/quote[1.0.0]"], version_filter="all", max_retries=20, retry_interval=0.2)

    job = assert_package(downloads[0].buffer, ["pricing/quote[1.0.0]"])
    assert job.created_by == "ci-robot@example.com"
    described = client.impex.exports.describe().data
    assert described["recent_exports"][0]["id"] == str(job.pk)


def test_sdk_imports_an_exported_package_into_another_tenant(live_server, tenant, other_tenant, catalog, start_worker):
    from tenants.models import Folder, ServiceVersion

    start_worker()
    exporter = sdk_client(live_server, api_key=make_api_key(tenant, name="sdk-key"))
    package = exporter.impex.exp(folders=["pricing"], version_filter="all", max_retries=20, retry_interval=0.2)[0].buffer
    Folder.objects.create(tenant=other_tenant, name="pricing")
    importer = Client(
        base_url=BaseUrl(url=live_server.url, tenant=other_tenant.slug),
        api_key=make_api_key(other_tenant, name="sdk-importer"),
        logger=False,
    )

    # The SDK's own defaults: services_existing add_version, update_version_type minor.
    status = importer.impex.imp(destination="pricing/quote", file=io.BytesIO(package), max_retries=20, retry_interval=0.2)

    assert status.data["status"] == "closed"
    assert [row["status"] for row in status.data["outputs"]["service_versions"]] == ["added"] * 3
    imported = ServiceVersion.objects.filter(service__folder__tenant=other_tenant).order_by("major", "minor")
    assert [v.version for v in imported] == ["1.0.0", "1.1.0", "1.2.0"]
    described = importer.impex.imports.describe().data
    assert described["recent_imports"][0]["id"] == status.data["id"]


def test_sdk_import_of_a_version_whose_xcall_target_is_missing_is_refused(live_server, tenant, other_tenant, start_worker):
    from cspark.sdk import SparkApiError

    from tenants.demo import demo_catalog_seed
    from tenants.models import Folder, ServiceVersion

    demo_catalog_seed(tenant=tenant, folders=0, services=0, versions=0)  # the motor Xcall chain
    start_worker()
    exporter = sdk_client(live_server, api_key=make_api_key(tenant, name="sdk-key"))
    package = exporter.impex.exp(services=["motor/quote"], max_retries=20, retry_interval=0.2)[0].buffer
    Folder.objects.create(tenant=other_tenant, name="motor")
    importer = Client(
        base_url=BaseUrl(url=live_server.url, tenant=other_tenant.slug),
        api_key=make_api_key(other_tenant, name="sdk-importer"),
        logger=False,
    )

    # The 422 reaches the SDK as an exception. SDK 0.3.3 then fails building its SparkApiError for
    # any refused multipart request (it reads the streamed request body): httpx.RequestNotRead.
    with pytest.raises((SparkApiError, httpx.RequestNotRead)):
        importer.impex.imp(destination="motor/quote", file=io.BytesIO(package), max_retries=20, retry_interval=0.2)
    assert not ServiceVersion.objects.filter(service__folder__tenant=other_tenant).exists()

    # What the server answered, as any HTTP client sees it.
    response = httpx.post(
        f"{live_server.url}/{other_tenant.slug}/api/v4/import",
        headers={"x-synthetic-key": make_api_key(other_tenant, name="http-importer"), "x-tenant-name": other_tenant.slug},
        data={"importRequestEntity": json.dumps({"inputs": {"services_modify": [{"service_uri_source": "motor/quote"}]}})},
        files={"file": ("package.zip", package, "application/zip")},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "MISSING_DEPENDENCY"
