"""The export status documents that polls read, from snapshots while they hold.

A snapshot is the serializer's output as last read from the database, plus what a request
must still check or fill in itself: who may see the job, the response timestamp, the
running time of a job in progress, and the download link, which is issued to the caller's
own credential. It is served only while the tokens of its scopes (sparkexport/snapshots/)
are the ones read before it was built.
"""
import functools
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from exports.api.serializers import ExportStatusSerializer, TenantExportStatusSerializer, download_url, iso_utc
from exports.snapshot_scopes import job_scope, tenant_jobs_scope
from exports.models import ExportJob, elapsed_ms, job_visible_to, visibility
from exports.selectors import RECENT_WINDOW, export_job_get, tenant_jobs_status
from sparkexport import snapshots
from sparkexport.job_progress import progress_figures
from tenants.api.snapshot_reads import request_snapshot_put, request_tokens, request_tokens_start
from tenants.snapshot_scopes import CATALOG_SCOPE, tenant_scope


# Callers of one job seldom number more than a few; past this their links are made anew.
MAX_LINKS_PER_SNAPSHOT = 64


@functools.lru_cache(maxsize=4096)
def export_status_scopes(job_id: str) -> tuple[str, ...]:
    """What one export's status document depends on; none for an id that is not a UUID."""
    try:
        return (job_scope(uuid.UUID(job_id)), CATALOG_SCOPE)
    except ValueError:
        return ()


def _origin(request) -> tuple:
    """What the absolute URLs in a document depend on: the scheme and the host as Django
    validates it (ALLOWED_HOSTS; X-Forwarded-Host only with USE_X_FORWARDED_HOST), so a
    header the server does not trust makes no snapshot of its own."""
    return (request.scheme, request.get_host())


@dataclass(frozen=True)
class JobStatusSnapshot:
    tenant_id: int
    created_by_key_id: int | None
    created_by_user_id: int | None
    created_at: datetime
    is_active: bool
    file_name: str
    document: dict
    # Download links issued to each credential that read this document: (url, fresh until).
    links: dict = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, request, job: ExportJob) -> "JobStatusSnapshot":
        return cls(
            tenant_id=job.tenant_id,
            created_by_key_id=job.created_by_key_id,
            created_by_user_id=job.created_by_user_id,
            created_at=job.created_at,
            is_active=job.is_active,
            file_name=job.file_name,
            # A plain dict: the serializer's ReturnDict would keep the serializer, and through
            # it the first request, alive as long as the snapshot.
            document=dict(ExportStatusSerializer(job, context={"request": request}).data),
        )

    @property
    def weight(self) -> int:
        outputs = self.document["outputs"]
        return 1 + len(outputs["services"]) + len(outputs["service_versions"]) + len(outputs["dependencies"])

    def visible_to(self, caller) -> bool:
        return job_visible_to(self, caller)

    def link(self, request, job_id) -> str:
        """The caller's own signed link, served with at least 90 % of its lifetime left."""
        credential = request.caller.credential_id
        url, fresh_until = self.links.get(credential, (None, 0.0))
        if time.monotonic() >= fresh_until:
            url = download_url(request, request.caller.tenant.slug, job_id, self.file_name)
            if len(self.links) >= MAX_LINKS_PER_SNAPSHOT:
                self.links.clear()
            self.links[credential] = (url, time.monotonic() + settings.EXPORT_DOWNLOAD_LINK_TTL / 10)
        return url

    def render(self, request) -> dict:
        now = timezone.now()
        document = {**self.document, "response_timestamp": iso_utc(now)}
        if self.is_active:
            document["process_time"] = elapsed_ms(self.created_at, now)
            document["progress"] = progress_figures(document["id"], active=True, recorded=self.document["progress"])
        outputs = self.document["outputs"]
        if outputs["files"]:
            files = [{**item, "file": self.link(request, document["id"])} for item in outputs["files"]]
            document["outputs"] = {**outputs, "files": files}
        return document


def export_status_document(request, job_id: str) -> dict:
    """GET export/{id}/status for `request.caller`: JOB_NOT_FOUND unless the caller may see it."""
    caller = request.caller
    scopes = export_status_scopes(job_id)
    tokens = request_tokens(request, *scopes) if scopes else None
    key = ("export-status", scopes, _origin(request))
    snapshot = snapshots.store.get(key, tokens) if tokens else None
    if snapshot is None or not snapshot.visible_to(caller):
        snapshot = JobStatusSnapshot.of(request, export_job_get(caller, job_id))
        if tokens:
            request_snapshot_put(request, key, tokens, snapshot, weight=snapshot.weight)
        else:
            request_tokens_start(request, *scopes)
    return snapshot.render(request)


@dataclass(frozen=True)
class TenantStatusSnapshot:
    document: dict
    started_at: dict  # job id → created_at, for the jobs in progress
    stale_at: datetime | None  # when its oldest recent job leaves the past hour

    @property
    def weight(self) -> int:
        return 1 + len(self.document["in_progress_exports"]) + len(self.document["recent_exports"])

    def render(self, now: datetime) -> dict:
        stamp = iso_utc(now)

        def summary(item: dict) -> dict:
            data = {**item["data"], "response_timestamp": stamp}
            if item["id"] in self.started_at:
                data["process_time"] = elapsed_ms(self.started_at[item["id"]], now)
            return {**item, "data": data}

        return {
            **self.document,
            "in_progress_exports": [summary(item) for item in self.document["in_progress_exports"]],
            "recent_exports": [summary(item) for item in self.document["recent_exports"]],
        }


def export_tenant_status_document(request) -> dict:
    """GET export/status for `request.caller`: its jobs in progress and of the past hour."""
    caller = request.caller
    slug = caller.tenant.slug
    scopes = (tenant_scope(slug), tenant_jobs_scope(slug))
    tokens = request_tokens(request, *scopes)
    key = ("export-tenant-status", slug, tuple(sorted(visibility(caller).items())))
    now = timezone.now()
    snapshot = snapshots.store.get(key, tokens) if tokens else None
    if snapshot is None or (snapshot.stale_at and now >= snapshot.stale_at):
        document = tenant_jobs_status(ExportJob, caller)
        recent = document["recent_exports"]
        snapshot = TenantStatusSnapshot(
            document=dict(TenantExportStatusSerializer(document).data),
            started_at={str(job.pk): job.created_at for job in document["in_progress_exports"]},
            stale_at=min(job.finished_at for job in recent) + RECENT_WINDOW if recent else None,
        )
        if tokens:
            request_snapshot_put(request, key, tokens, snapshot, weight=snapshot.weight)
        else:
            request_tokens_start(request, *scopes)
    return snapshot.render(now)
