"""Import jobs in the supervisor admin: scoped like export jobs, read-only."""
import pytest
from django.urls import reverse

from exports.models import ImportJob, JobStatus
from tests.admin.conftest import logged_in

pytestmark = pytest.mark.django_db


def make_import(tenant, **fields) -> ImportJob:
    return ImportJob.objects.create(
        tenant=tenant,
        created_by="importer",
        status=JobStatus.CLOSED,
        services_modify=[{"service_uri_source": "pricing/quote"}],
        outputs={"services": [{"service_uri_destination": "pricing/quote", "status": "added"}], "service_versions": []},
        **fields,
    )


def test_supervisor_sees_only_their_tenants_import_jobs(supervisor, tenant, other_tenant):
    own = make_import(tenant, correlation_id="mine")
    other = make_import(other_tenant, correlation_id="theirs")
    client = logged_in(supervisor)

    page = client.get(reverse("admin:exports_importjob_changelist"))
    assert page.status_code == 200
    assert b"mine" in page.content and b"theirs" not in page.content

    detail = client.get(reverse("admin:exports_importjob_change", args=[own.pk]))
    assert detail.status_code == 200
    assert b"pricing/quote" in detail.content
    assert client.get(reverse("admin:exports_importjob_change", args=[other.pk])).status_code == 404


def test_import_jobs_are_read_only(supervisor, tenant):
    job = make_import(tenant)
    client = logged_in(supervisor)
    assert client.get(reverse("admin:exports_importjob_add")).status_code == 403
    assert client.post(reverse("admin:exports_importjob_change", args=[job.pk]), {}).status_code == 403
    assert client.get(reverse("admin:exports_importjob_changelist"), {"q": str(job.pk)}).context["cl"].result_count == 1
