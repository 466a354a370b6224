"""Two tenants, a supervisor of each, and jobs in known states for the admin tests."""
import hashlib
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from exports.models import ExportJob, ImportJob, JobStatus, package_storage
from tenants.services import member_add
from tests.factories import ServiceVersionFactory


def make_job(tenant, *, status=JobStatus.CLOSED, created_ago=timedelta(minutes=5), took=timedelta(seconds=2), versions=(), **fields) -> ExportJob:
    """An export job row as the worker would leave it (created_at set explicitly)."""
    created_at = timezone.now() - created_ago
    finished = status not in (JobStatus.CREATED, JobStatus.IN_PROGRESS)
    job = ExportJob.objects.create(
        tenant=tenant,
        status=status,
        created_by=fields.pop("created_by", "ci-key"),
        inputs=fields.pop("inputs", {"folders": ["pricing"], "services": [], "version_ids": []}),
        file_filter="migrate",
        version_filter="all",
        **fields,
    )
    ExportJob.objects.filter(pk=job.pk).update(
        created_at=created_at,
        started_at=created_at if status != JobStatus.CREATED else None,
        finished_at=created_at + took if finished else None,
    )
    job.refresh_from_db()
    if versions:
        job.versions.set(versions)
    return job


def make_import(tenant, *, status=JobStatus.CLOSED, created_ago=timedelta(minutes=5), took=timedelta(seconds=2), **fields) -> ImportJob:
    """An import job row as the worker would leave it (created_at set explicitly), without an upload."""
    created_at = timezone.now() - created_ago
    finished = status not in (JobStatus.CREATED, JobStatus.IN_PROGRESS)
    job = ImportJob.objects.create(
        tenant=tenant,
        status=status,
        created_by=fields.pop("created_by", "importer"),
        services_modify=fields.pop("services_modify", [{"service_uri_source": "pricing/quote"}]),
        outputs=fields.pop(
            "outputs",
            {"services": [{"service_uri_destination": "pricing/quote", "status": "added"}], "service_versions": []},
        ),
        **fields,
    )
    ImportJob.objects.filter(pk=job.pk).update(
        created_at=created_at,
        started_at=created_at if status != JobStatus.CREATED else None,
        finished_at=created_at + took if finished else None,
    )
    job.refresh_from_db()
    return job


def store_package(job: ExportJob, content: bytes = b"PK\x05\x06" + b"\0" * 18) -> str:
    """Give a closed job a stored package, as the worker closing it would."""
    name = package_storage().save(f"{job.tenant.slug}/{job.pk}.zip", ContentFile(content))
    ExportJob.objects.filter(pk=job.pk).update(
        package=name, file_size=len(content), file_hash=hashlib.sha256(content).hexdigest()
    )
    job.refresh_from_db()
    return name


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def supervisor(tenant):
    return member_add(tenant=tenant, username="sue@acme.test", supervisor=True).user


@pytest.fixture
def admin_client_a(supervisor):
    """A supervisor of tenant acme."""
    return logged_in(supervisor)


@pytest.fixture
def admin_client_b(other_tenant):
    """A supervisor of tenant globex."""
    return logged_in(member_add(tenant=other_tenant, username="bob@globex.test", supervisor=True).user)


@pytest.fixture
def version_a(tenant):
    return ServiceVersionFactory(
        service__folder__tenant=tenant, service__folder__name="pricing", service__name="quote", version="1.0.0"
    )


@pytest.fixture
def version_b(other_tenant):
    return ServiceVersionFactory(
        service__folder__tenant=other_tenant, service__folder__name="pricing", service__name="quote", version="1.0.0"
    )
