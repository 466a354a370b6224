"""Worlds for the security tests: a tenant with a catalog, jobs in every state, and credentials.

`build_world` gives every name a distinctive prefix, so a test can scan any response body
for another tenant's slug, job ids, service names and version ids.
"""
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone

from exports.building import export_job_package
from exports.models import ExportJob, ImportJob, JobStatus, package_storage
from tenants.models import Permission
from tenants.services import apikey_create
from tests.factories import ServiceVersionFactory, TenantFactory
from tests.security.fuzz_stats import FUZZ_STATS


@dataclass
class World:
    """One tenant's data and the secrets of its API keys."""

    tenant: object
    prefix: str
    keys: dict = field(default_factory=dict)  # label -> secret
    key_objects: dict = field(default_factory=dict)  # label -> ApiKey
    jobs: dict = field(default_factory=dict)  # state -> ExportJob
    import_job: ImportJob | None = None
    versions: list = field(default_factory=list)
    package: bytes = b""

    def secrets_of_data(self) -> list[str]:
        """Strings that must never appear in a response to anyone outside this tenant."""
        values = [self.tenant.slug, self.prefix, str(self.import_job.pk)]
        values += [str(job.pk) for job in self.jobs.values()]
        for version in self.versions:
            values += [str(version.version_id), str(version.service.service_id)]
            values += [version.service.name, version.service.folder.name]
        values += [key.name for key in self.key_objects.values()]
        return values


def export_job(world: World, state: str, *, status, owner="owner", pk=None, package=False, **extra) -> ExportJob:
    """A job of `owner`'s key over the world's versions; package=True stores the world's package."""
    key = world.key_objects[owner]
    job = ExportJob.objects.create(
        pk=pk or uuid.uuid4(),
        tenant=world.tenant,
        status=status,
        created_by=key.name,
        created_by_key=key,
        file_filter="migrate",
        version_filter="all",
        inputs={"folders": [f"{world.prefix}-folder"]},
        finished_at=None if status in (JobStatus.CREATED, JobStatus.IN_PROGRESS) else timezone.now(),
        **extra,
    )
    job.versions.set(world.versions)
    if package:
        job.package.save(f"{world.tenant.slug}/{job.pk}.zip", ContentFile(world.package), save=False)
        job.file_size = len(world.package)
        job.file_hash = hashlib.sha256(world.package).hexdigest()
        job.zip_process_time_ms = 7
        job.save()
    world.jobs[state] = job
    return job


def build_world(slug: str, prefix: str, *, job_ids: dict | None = None, job_limit: int = 1) -> World:
    """A tenant with two versions, keys of every kind, and export jobs in the states that matter."""
    job_ids = job_ids or {}
    tenant = TenantFactory(slug=slug, export_api_job_limit=job_limit, import_api_job_limit=job_limit)
    world = World(tenant=tenant, prefix=prefix)
    for version in ("1.0.0", "1.1.0"):
        world.versions.append(
            ServiceVersionFactory(
                service__folder__tenant=tenant,
                service__folder__name=f"{prefix}-folder",
                service__name=f"{prefix}-service",
                version=version,
            )
        )
    key_specs = {
        "owner": {"permissions": [Permission.ALL]},
        "second": {"permissions": [Permission.ALL]},
        "supervisor": {"permissions": [Permission.ALL], "supervisor": True},
        "exports_only": {"permissions": [Permission.EXPORTS]},
        "imports_only": {"permissions": [Permission.IMPORTS]},
    }
    for label, spec in key_specs.items():
        key, secret = apikey_create(tenant=tenant, name=f"{prefix}-{label}-key", **spec)
        world.keys[label], world.key_objects[label] = secret, key
    closed = export_job(
        world, "closed", status=JobStatus.IN_PROGRESS, pk=job_ids.get("closed"), started_at=timezone.now()
    )
    assert export_job_package(closed)  # the real packager: its ZIP is importable
    closed.refresh_from_db()
    with package_storage().open(closed.package.name) as stored:
        world.package = stored.read()
    export_job(world, "in_progress", status=JobStatus.IN_PROGRESS, pk=job_ids.get("in_progress"))
    export_job(
        world,
        "failed",
        status=JobStatus.FAILED,
        pk=job_ids.get("failed"),
        errors=[{"code": "WORKER_DIED", "message": "The worker died."}],
    )
    export_job(
        world,
        "expired",
        status=JobStatus.CLOSED,
        pk=job_ids.get("expired"),
        file_hash="ab" * 32,
        file_size=1,
        package_expired_at=timezone.now() - timedelta(minutes=5),
    )
    owner = world.key_objects["owner"]
    world.import_job = ImportJob.objects.create(
        pk=job_ids.get("import") or uuid.uuid4(),
        tenant=tenant,
        status=JobStatus.CLOSED,
        created_by=owner.name,
        created_by_key=owner,
        finished_at=timezone.now(),
        services_modify=[{"service_uri_source": f"{prefix}-folder/{prefix}-service"}],
        outputs={"services": [], "service_versions": []},
    )
    return world


@pytest.fixture
def in_process_wsgi():
    """Let the WSGI app be called directly inside the test transaction, as Django's test client does.

    Django closes the connection at the end of every request (CONN_MAX_AGE=0), which would end
    the test's transaction; the test client disconnects these receivers for the same reason.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def pytest_terminal_summary(terminalreporter):
    if not FUZZ_STATS["operations"] and not FUZZ_STATS["stateful_steps"]:
        return
    failures = FUZZ_STATS["failures"]
    terminalreporter.write_sep("-", "schemathesis fuzzing summary")
    terminalreporter.write_line(
        f"operations: {len(FUZZ_STATS['operations'])}, examples: {FUZZ_STATS['examples']}, "
        f"stateful steps: {FUZZ_STATS['stateful_steps']}, failing examples: {len(failures)}"
    )
    for operation, statuses in sorted(FUZZ_STATS["statuses"].items()):
        terminalreporter.write_line(f"  {operation}: {dict(sorted(statuses.items()))}")
    for failure in sorted(set(failures))[:20]:
        terminalreporter.write_line(f"  FAIL {failure}")

