"""The export status documents that polls read, from snapshots while they hold.

A snapshot is the serializer's output as last read from the database, plus what a request
must still check or fill in itself: who may see the job, the response timestamp and the
running time of a job in progress. It is served only while the tokens of its scopes
(sparkexport/snapshots.py) are the ones read before it was built.
"""
import functools
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from exports.api.serializers import ExportStatusSerializer, TenantExportStatusSerializer, iso_utc
from exports.changes import job_scope, tenant_jobs_scope
from exports.models import ExportJob, elapsed_ms
from exports.selectors import RECENT_WINDOW, export_job_get, job_visible_to, tenant_jobs_status
from sparkexport import snapshots
from sparkexport.api.snapshot_reads import request_tokens, request_tokens_start
from tenants.changes import CATALOG_SCOPE, tenant_scope


@functools.lru_cache(maxsize=4096)
def export_status_scopes(job_id: str) -> tuple[str, ...]:
    """What one export's status document depends on; none for an id that is not a UUID."""
    try:
        return (job_scope(uuid.UUID(job_id)), CATALOG_SCOPE)
    except ValueError:
        return ()


def _origin(request) -> tuple:
    """What the absolute URLs in a document depend on: the request headers `get_host()` reads."""
    meta = request.META
    return (
        request.scheme,
        meta.get("HTTP_X_FORWARDED_HOST"),
        meta.get("HTTP_HOST"),
        meta.get("SERVER_NAME"),
        meta.get("SERVER_PORT"),
    )


@dataclass(frozen=True)
class JobStatusSnapshot:
    tenant_id: int
    created_by_key_id: int | None
    created_by_user_id: int | None
    created_at: datetime
    is_active: bool
    document: dict

    @classmethod
    def of(cls, request, job: ExportJob) -> "JobStatusSnapshot":
        return cls(
            tenant_id=job.tenant_id,
            created_by_key_id=job.created_by_key_id,
            created_by_user_id=job.created_by_user_id,
            created_at=job.created_at,
            is_active=job.is_active,
            # A plain dict: the serializer's ReturnDict would keep the serializer, and through
            # it the first request, alive as long as the snapshot.
            document=dict(ExportStatusSerializer(job, context={"request": request}).data),
        )

    @property
    def weight(self) -> int:
        outputs = self.document["outputs"]
        return 1 + len(outputs["services"]) + len(outputs["service_versions"])

    @property
    def max_age(self) -> float | None:
        """A signed download link is served with at least 90 % of its lifetime left."""
        return settings.EXPORT_DOWNLOAD_LINK_TTL / 10 if self.document["outputs"]["files"] else None

    def visible_to(self, caller) -> bool:
        return self.tenant_id == caller.tenant.pk and job_visible_to(self, caller)

    def render(self) -> dict:
        now = timezone.now()
        document = {**self.document, "response_timestamp": iso_utc(now)}
        if self.is_active:
            document["process_time"] = elapsed_ms(self.created_at, now)
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
            snapshots.store.put(key, tokens, snapshot, max_age=snapshot.max_age, weight=snapshot.weight)
        else:
            request_tokens_start(request, *scopes)
    return snapshot.render()


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


def _visibility(caller) -> str:
    if caller.is_supervisor:
        return "all"
    if caller.api_key is not None:
        return f"key:{caller.api_key.pk}"
    return f"user:{caller.user.pk}"


def export_tenant_status_document(request) -> dict:
    """GET export/status for `request.caller`: its jobs in progress and of the past hour."""
    caller = request.caller
    slug = caller.tenant.slug
    scopes = (tenant_scope(slug), tenant_jobs_scope(slug))
    tokens = request_tokens(request, *scopes)
    key = ("export-tenant-status", slug, _visibility(caller))
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
            snapshots.store.put(key, tokens, snapshot, weight=snapshot.weight)
        else:
            request_tokens_start(request, *scopes)
    return snapshot.render(now)
