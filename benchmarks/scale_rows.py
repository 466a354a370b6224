"""The rows of a year of production, for benchmarks/scale_data.py: export and import jobs, their
audit events and selected versions, drawn from a seeded random generator (no database here).

Every job is a plausible CI/CD request: a pipeline's API key (sometimes a supervisor in the
admin) exports one service (mostly its latest version), or a folder; most jobs close, some
fail, are cancelled or time out; the newest few are still waiting or running. Packages of the
past week are still stored, older ones were purged; correlation ids look like CI run ids.
"""
from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

DAY = 86_400.0
RETENTION = timedelta(days=7)
JOB_TIMEOUT = timedelta(minutes=15)

EXPORT_OUTCOMES = (("closed", 0.935), ("failed", 0.04), ("cancelled", 0.015), ("closed_by_timeout", 0.01))
IMPORT_OUTCOMES = (("closed", 0.90), ("failed", 0.07), ("cancelled", 0.02), ("closed_by_timeout", 0.01))
SOURCES = ("gitlab-ci", "github-actions", "jenkins", "azure-pipelines", None)
EXPORT_ERRORS = (
    ("WORKER_LOST", "The job was ended by the reaper: its worker died. Run it again."),
    ("STORAGE_UNAVAILABLE", "The package could not be stored: storage did not answer."),
    ("PACKAGE_TOO_LARGE", "The package grew past this tenant's limit of 200 MB."),
)
IMPORT_ERRORS = (
    ("SERVICE_EXISTS", "Service pricing/quote already exists and services_existing is 'abort'."),
    ("WORKER_LOST", "The job was ended by the reaper: its worker died. Run it again."),
)

EXPORT_COLUMNS = (
    "id", "tenant_id", "status", "created_by", "created_by_user_id", "created_by_key_id", "created_by_credential",
    "source_system", "correlation_id", "created_at", "updated_at", "started_at", "finished_at", "errors",
    "idempotency_key", "request_fingerprint", "inputs", "file_filter", "version_filter", "file_name",
    "include_dependencies", "dependencies", "estimated_size", "zip_process_time_ms", "package", "file_size",
    "file_hash", "package_expired_at", "content_key",
)
IMPORT_COLUMNS = (
    "id", "tenant_id", "status", "created_by", "created_by_user_id", "created_by_key_id", "created_by_credential",
    "source_system", "correlation_id", "created_at", "updated_at", "started_at", "finished_at", "errors",
    "idempotency_key", "request_fingerprint", "services_modify", "services_existing", "dry_run", "upload",
    "upload_size", "upload_sha256", "outputs", "warnings",
)
AUDIT_COLUMNS = ("tenant_id", "job_kind", "job_id", "action", "actor", "credential", "at")
JOB_VERSION_COLUMNS = ("exportjob_id", "serviceversion_id")


@dataclass
class Creator:
    """Who creates jobs: a pipeline's API key or a supervisor in the admin."""

    label: str
    credential_id: str
    credential: str
    key_id: int | None = None
    user_id: int | None = None


@dataclass
class TenantCatalog:
    """A tenant as the generator sees it: its creators (busiest first) and its catalog,
    folder name → service name → version pks in semver order."""

    pk: int
    slug: str
    creators: list[Creator]
    supervisors: list[Creator]
    folders: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def __post_init__(self):
        # The two odd-sized folders of BUSY (folder-0000, folder-0001) go last: seldom picked.
        names = list(self.folders)
        self.folder_names = names[2:] + names[:2]

    def pick(self, rng: random.Random, items: list):
        """Skewed towards the first items: a few pipelines and folders do most of the work."""
        return items[int(len(items) * rng.random() ** 2.5)]


def hex64(rng: random.Random) -> str:
    return "%064x" % rng.getrandbits(256)


def new_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def correlation_id(rng: random.Random, creator: Creator) -> str | None:
    draw = rng.random()
    if draw < 0.15:
        return None
    if draw < 0.25:
        return str(new_uuid(rng))
    return f"{creator.label}-{rng.randrange(10**6, 10**7)}-{rng.getrandbits(32):08x}"


def outcome(rng: random.Random, outcomes) -> str:
    draw = rng.random()
    for status, share in outcomes:
        if draw < share:
            return status
        draw -= share
    return outcomes[0][0]


def timing(rng: random.Random, created: datetime, status: str) -> tuple:
    """(started_at, finished_at) of a job in `status`, created at `created`."""
    if status == "created":
        return None, None
    started = created + timedelta(seconds=rng.uniform(0.05, 3))
    if status == "in_progress":
        return started, None
    if status == "closed_by_timeout":
        return started, started + JOB_TIMEOUT + timedelta(seconds=rng.uniform(0, 60))
    return started, started + timedelta(seconds=rng.lognormvariate(1.2, 1.0))


@dataclass
class Clock:
    """The year the jobs fall in, and which of them are still active (the newest)."""

    now: datetime

    def stored(self, finished: datetime | None) -> bool:
        return finished is not None and finished > self.now - RETENTION


def common_fields(rng: random.Random, tenant: TenantCatalog, created: datetime, status: str, errors) -> tuple:
    """The BackgroundJob columns both kinds share, in EXPORT_COLUMNS' order, and the creator."""
    creator = tenant.pick(rng, tenant.creators) if rng.random() > 0.03 else rng.choice(tenant.supervisors)
    started, finished = timing(rng, created, status)
    return (
        new_uuid(rng), tenant.pk, status, creator.label, creator.user_id, creator.key_id, creator.credential_id,
        rng.choice(SOURCES) if creator.key_id else None, correlation_id(rng, creator), created,
        finished or started or created, started, finished, _error(rng, status, errors),
        f"idem-{rng.getrandbits(64):016x}" if rng.random() < 0.3 else "", hex64(rng),
    ), creator


def _error(rng, status, catalogue) -> str | None:
    if status == "failed":
        code, message = rng.choice(catalogue)
        return json.dumps([{"code": code, "message": message}])
    if status == "closed_by_timeout":
        return json.dumps([{"code": "JOB_TIMEOUT", "message": "The job did not finish within 900 seconds."}])
    return None


def export_selection(rng: random.Random, tenant: TenantCatalog) -> tuple[dict, str, list[int]]:
    """(inputs, version_filter, selected version pks): mostly one service's latest version."""
    folder = tenant.pick(rng, tenant.folder_names)
    services = tenant.folders[folder]
    draw = rng.random()
    if draw < 0.85:
        service = tenant.pick(rng, list(services))
        versions = services[service]
        if draw < 0.70:
            return {"folders": [], "services": [f"{folder}/{service}"], "version_ids": []}, "latest", versions[-1:]
        return {"folders": [], "services": [f"{folder}/{service}"], "version_ids": []}, "all", versions
    inputs = {"folders": [folder], "services": [], "version_ids": []}
    if draw < 0.97:
        return inputs, "latest", [versions[-1] for versions in services.values()]
    return inputs, "all", [pk for versions in services.values() for pk in versions]


def export_job(rng: random.Random, clock: Clock, tenant: TenantCatalog, created: datetime, status: str):
    """(export job row, its version pks, its audit events)."""
    common, creator = common_fields(rng, tenant, created, status, EXPORT_ERRORS)
    job_id, finished = common[0], common[12]
    inputs, version_filter, version_pks = export_selection(rng, tenant)
    size = sum(60_000 + pk % 997 * 40 for pk in version_pks)
    closed = status == "closed"
    stored = closed and clock.stored(finished)
    key = hashlib.sha256(f"{tenant.pk}:{sorted(version_pks)}:{created.isocalendar()[1]}".encode()).hexdigest()
    row = common + (
        json.dumps(inputs), "migrate", version_filter, "package.zip", rng.random() < 0.05, "[]", size,
        int(rng.lognormvariate(5, 1)) if closed else None,
        f"{tenant.slug}/{job_id}.zip" if stored else "",
        size if closed else None, hex64(rng) if closed else "",
        finished + RETENTION if closed and not stored else None, key,
    )
    return row, version_pks, audit_events(rng, tenant, creator, "export", row, closed)


def import_job(rng: random.Random, clock: Clock, tenant: TenantCatalog, created: datetime, status: str):
    """(import job row, its audit events)."""
    common, creator = common_fields(rng, tenant, created, status, IMPORT_ERRORS)
    job_id, finished = common[0], common[12]
    folder = tenant.pick(rng, tenant.folder_names)
    service = tenant.pick(rng, list(tenant.folders[folder]))
    uri = f"{folder}/{service}"
    dry_run = rng.random() < 0.25
    closed = status == "closed"
    kept = not dry_run and clock.stored(finished or created)
    outputs = {"services": [{"service_uri_destination": uri, "status": "added"}], "service_versions": []} if closed else {}
    row = common + (
        json.dumps([{"service_uri_source": uri, "service_uri_destination": uri}]),
        rng.choice(("abort", "add_version", "replace")), dry_run,
        f"imports/{tenant.slug}/{job_id}.zip" if kept else "", 120_000 + rng.randrange(400_000), hex64(rng),
        json.dumps(outputs), "[]",
    )
    return row, audit_events(rng, tenant, creator, "import", row, closed)


def audit_events(rng, tenant: TenantCatalog, creator: Creator, kind: str, row: tuple, closed: bool) -> list[tuple]:
    """Created; then, as happens: downloaded (closed exports), cancelled, re-run by a supervisor."""
    job_id, status, created, finished = row[0], row[2], row[9], row[12]
    events = [(tenant.pk, kind, job_id, "created", creator.label, creator.credential, created)]
    if kind == "export" and closed and rng.random() < 0.8:
        events.append((tenant.pk, kind, job_id, "downloaded", creator.label, creator.credential,
                       finished + timedelta(seconds=rng.uniform(1, 120))))
    if status == "cancelled":
        events.append((tenant.pk, kind, job_id, "cancelled", creator.label, creator.credential, finished))
    if status in ("failed", "closed_by_timeout") and rng.random() < 0.3:
        supervisor = rng.choice(tenant.supervisors)
        events.append((tenant.pk, kind, job_id, "rerun", supervisor.label, supervisor.credential,
                       finished + timedelta(minutes=rng.uniform(5, 600))))
    return events


def creation_times(rng: random.Random, count: int, now: datetime, days: int = 365) -> list[datetime]:
    """`count` moments over the past `days`, oldest first, busier on weekdays."""
    start = now.timestamp() - days * DAY
    moments = []
    while len(moments) < count:
        moment = start + rng.random() * days * DAY
        weekday = datetime.fromtimestamp(moment, timezone.utc).weekday()
        if weekday < 5 or rng.random() < 0.3:
            moments.append(moment)
    moments.sort()
    return [datetime.fromtimestamp(moment, timezone.utc) for moment in moments]
