"""What the export API tests share: requests, error checks and rows as the worker leaves them."""
import re

from django.utils import timezone

from exports.models import ExportJob, JobStatus
from tenants.models import ApiKey
from tests.factories import FolderFactory, ServiceFactory, ServiceVersionFactory

ISO_UTC_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def post_export(client, body, **kwargs):
    return client.post(client.api("export"), body, format="json", **kwargs)


def post_raw(client, text: str, content_type="application/json"):
    return client.post(client.api("export"), data=text, content_type=content_type)


def assert_error(response, status: int, code: str, *words: str) -> dict:
    """The response is our JSON error body with `code`, and its message names `words`."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"type", "code", "message", "details"}, body
    assert body["code"] == code, body
    assert body["message"] and "Traceback" not in body["message"]
    for word in words:
        assert word in body["message"], (word, body["message"])
    return body


def make_versions(tenant, folder: str, service: str, *versions: str, compiled=True):
    folder_obj = FolderFactory(tenant=tenant, name=folder) if isinstance(folder, str) else folder
    service_obj = ServiceFactory(folder=folder_obj, name=service)
    return [ServiceVersionFactory(service=service_obj, version=v, compiled=compiled) for v in versions]


def versions_of(body) -> list[str]:
    return [row["service_uri_source"] for row in body["outputs"]["service_versions"]]


def close_job(job_id, *, finished_at=None, **changes):
    """Simulate the worker finishing a job (the download itself is tested elsewhere)."""
    values = {
        "status": JobStatus.CLOSED,
        "finished_at": finished_at or timezone.now(),
        "package": f"packages/{job_id}.zip",
        "file_size": 123,
        "file_hash": "ab" * 32,
        "zip_process_time_ms": 42,
    }
    values.update(changes)
    ExportJob.objects.filter(pk=job_id).update(**values)


def make_job(tenant, *, key_name="ci-key", status=JobStatus.CREATED, finished_ago=None, versions=()):
    job = ExportJob.objects.create(
        tenant=tenant,
        status=status,
        created_by=key_name,
        created_by_key=ApiKey.objects.get(tenant=tenant, name=key_name),
        file_filter="migrate",
        version_filter="all",
        finished_at=None if finished_ago is None else timezone.now() - finished_ago,
    )
    job.versions.set(versions)
    return job
