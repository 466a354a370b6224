"""An exported package of tenant acme, made by the real export path, for the import tests."""
import django_rq
import pytest
from rq import SimpleWorker

from tenants.models import Folder
from tests.conftest import SparkClient
from tests.factories import ServiceVersionFactory, make_api_key

SOURCE = {
    ("pricing", "quote"): ["1.0.0", "1.1.0"],
    ("pricing", "risk"): ["2.0.0"],
    ("claims", "triage"): ["0.1.0"],
}


def run_workers():
    queues = [django_rq.get_queue("exports"), django_rq.get_queue("imports")]
    SimpleWorker(queues, connection=queues[0].connection).work(burst=True)


def export_all(api, capture, folders=("claims", "pricing")) -> bytes:
    return export_package(api, capture, {"folders": list(folders)})


def export_package(api, capture, inputs: dict) -> bytes:
    """The package of a real export of `inputs` (an export request's), run by a worker."""
    with capture(execute=True):
        job_id = api.post(api.api("export"), {"inputs": inputs}, format="json").json()["id"]
    run_workers()
    status = api.get(api.api(f"export/{job_id}/status")).json()
    assert status["status"] == "closed", status
    return b"".join(api.get(status["outputs"]["files"][0]["file"]).streaming_content)


@pytest.fixture
def source(tenant, api, redis_queue, django_capture_on_commit_callbacks) -> bytes:
    for (folder, service), versions in SOURCE.items():
        for version in versions:
            ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name=folder, service__name=service, version=version)
    return export_all(api, django_capture_on_commit_callbacks)




@pytest.fixture
def dest(other_tenant):
    """An importer's client of tenant globex, which has the folders pricing and claims."""
    for name in ("pricing", "claims"):
        Folder.objects.create(tenant=other_tenant, name=name)
    return SparkClient(other_tenant.slug, make_api_key(other_tenant, name="importer"))
