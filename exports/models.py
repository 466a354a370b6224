"""Export jobs: the database row is the source of truth for a job's state."""
import uuid

from django.conf import settings
from django.core.files.storage import storages
from django.db import models
from django.utils import timezone

from sparkexport.snapshots.writes import SnapshotQuerySet
from tenants.models import ApiKey, ServiceVersion, Tenant


class JobStatus(models.TextChoices):
    """Spark's job states; `closed` is success."""

    CREATED = "created"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"
    CLOSED_BY_TIMEOUT = "closed_by_timeout"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATES = (JobStatus.CREATED, JobStatus.IN_PROGRESS)
TERMINAL_STATES = (
    JobStatus.CLOSED,
    JobStatus.CLOSED_BY_TIMEOUT,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)


class FileFilter(models.TextChoices):
    MIGRATE = "migrate"
    ONPREMISES = "onpremises"


class VersionFilter(models.TextChoices):
    ALL = "all"
    LATEST = "latest"


def elapsed_ms(start, end) -> int:
    return max(0, int((end - start).total_seconds() * 1000))


def package_storage():
    return storages["packages"]


def visibility(caller) -> dict:
    """Which of its tenant's jobs a caller may see, as the values their columns must have:
    every job for a supervisor, else the jobs of its own API key or user. The one rule for
    selectors, status documents and their snapshots."""
    if caller.is_supervisor:
        return {}
    if caller.api_key is not None:
        return {"created_by_key_id": caller.api_key.pk}
    return {"created_by_user_id": getattr(caller.user, "pk", None)}


def job_visible_to(job, caller) -> bool:
    """`visibility` for a job already in memory (or anything with its columns)."""
    return job.tenant_id == caller.tenant.pk and all(
        getattr(job, column) == value for column, value in visibility(caller).items()
    )


class JobQuerySet:
    """What the querysets of both job kinds add (a mixin: exports are snapshot-fed, imports not)."""

    def visible_to(self, caller):
        """The jobs of `caller`'s tenant that it may see."""
        return self.filter(tenant=caller.tenant, **visibility(caller))


class ExportJobQuerySet(JobQuerySet, SnapshotQuerySet):
    pass


class ImportJobQuerySet(JobQuerySet, models.QuerySet):
    pass


class BackgroundJob(models.Model):
    """What export and import jobs share: who asked, when, how it went.

    Each kind names itself (`kind`), its RQ queue and the tenant's limit of its jobs in
    progress; exports/lifecycle.py moves both kinds through the same states.
    """

    kind: str
    queue_name: str
    job_limit_field: str

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.CREATED)

    created_by = models.CharField(max_length=150)
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_by_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    # The credential that created the job (tenants.credentials: "key:12", "client:7", ...):
    # its Idempotency-Keys are its own.
    created_by_credential = models.CharField(max_length=40, blank=True)
    source_system = models.CharField(max_length=200, null=True, blank=True)
    correlation_id = models.CharField(max_length=200, null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)
    errors = models.JSONField(null=True, blank=True)
    # Entries and bytes done, of totals known when it started (sparkexport/job_progress.py):
    # recorded when the job ends; while it runs, polls read what its worker publishes.
    progress = models.JSONField(null=True, blank=True)
    # A retried request with the same Idempotency-Key and body gets this job back.
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]
        # Each kind's own (exportjob_..., importjob_...); `tenant` is each kind's field. Past the
        # first, each serves a read of a long history in the order it reads (docs/scale.md): the
        # admin's lists newest first (whole, by tenant, status or creator; the creators), its
        # search by correlation id (exact or a prefix), and the dashboard's recent figures.
        indexes = [
            models.Index(fields=["tenant", "status"], name="%(class)s_tenant_status"),
            models.Index(fields=["tenant", "created_at", "id"], include=["status"], name="%(class)s_tenant_created"),
            models.Index(fields=["status", "created_at", "id"], name="%(class)s_status_created"),
            models.Index(fields=["created_by", "created_at", "id"], name="%(class)s_creator_created"),
            models.Index(fields=["tenant", "created_by"], name="%(class)s_tenant_creator"),
            models.Index(
                fields=["tenant", "finished_at"], include=["status", "created_at"], name="%(class)s_tenant_finished"
            ),
            models.Index(fields=["correlation_id"], opclasses=["varchar_pattern_ops"], name="%(class)s_correlation"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "created_by_credential", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="%(class)s_unique_credential_idempotency_key",
            )
        ]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATES

    @property
    def process_time_ms(self) -> int:
        return elapsed_ms(self.created_at, self.finished_at or timezone.now())


class ExportJob(BackgroundJob):
    """One export request: what was selected, how far packaging got, and the package."""

    kind = "export"
    queue_name = "exports"
    job_limit_field = "export_api_job_limit"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="export_jobs")
    inputs = models.JSONField(default=dict)
    file_filter = models.CharField(max_length=16, choices=FileFilter.choices)
    version_filter = models.CharField(max_length=16, choices=VersionFilter.choices)
    file_name = models.CharField(max_length=100, default="package.zip")
    include_dependencies = models.BooleanField(default=False)
    versions = models.ManyToManyField(
        ServiceVersion, related_name="export_jobs", blank=True, through="ExportJobVersion"
    )
    # outputs.dependencies[]: each Xcall of the versions, as resolved when the job was created.
    dependencies = models.JSONField(default=list, blank=True)
    estimated_size = models.PositiveBigIntegerField(default=0)
    zip_process_time_ms = models.PositiveIntegerField(null=True, blank=True)

    package = models.FileField(storage=package_storage, max_length=300, blank=True)
    file_size = models.PositiveBigIntegerField(null=True, blank=True)
    file_hash = models.CharField(max_length=64, blank=True)
    package_expired_at = models.DateTimeField(null=True, blank=True)
    # Digest of every entry (path, size, SHA-256): equal keys mean byte-identical packages.
    content_key = models.CharField(max_length=64, blank=True, db_index=True)

    objects = ExportJobQuerySet.as_manager()

    class Meta(BackgroundJob.Meta):
        base_manager_name = "objects"
        indexes = [
            *BackgroundJob.Meta.indexes,
            # Only the packages still stored: the purge's batches, whether another job shares
            # a package, and the dashboard's count and bytes, none of which reads the history.
            models.Index(
                fields=["package"], include=["tenant", "file_size", "finished_at"], condition=~models.Q(package=""),
                name="exportjob_stored_package",
            ),
        ]

    def __str__(self):
        return f"export {self.id} ({self.status})"


class ExportJobVersion(models.Model):
    """One version selected by an export job (the table Django made for the M2M before)."""

    exportjob = models.ForeignKey(ExportJob, on_delete=models.CASCADE)
    serviceversion = models.ForeignKey(ServiceVersion, on_delete=models.CASCADE)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        base_manager_name = "objects"
        db_table = "exports_exportjob_versions"
        unique_together = [("exportjob", "serviceversion")]


class ServicesExisting(models.TextChoices):
    """What an import does with a destination service that already exists."""

    ABORT = "abort"
    REPLACE = "replace"
    ADD_VERSION = "add_version"
    SKIP = "skip"


class UpdateVersionType(models.TextChoices):
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"


class ImportJob(BackgroundJob):
    """One import request: the uploaded package, the plan checked at upload, and the outcome."""

    kind = "import"
    queue_name = "imports"
    job_limit_field = "import_api_job_limit"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="import_jobs")
    services_modify = models.JSONField(default=list)
    services_existing = models.CharField(
        max_length=16, choices=ServicesExisting.choices, default=ServicesExisting.ABORT
    )
    dry_run = models.BooleanField(default=False)
    # Import although an Xcall of an imported version reaches nothing (warnings, not an error).
    allow_missing_dependencies = models.BooleanField(default=False)
    # Leave out package versions whose files equal a version of the destination service.
    skip_unchanged = models.BooleanField(default=False)
    upload = models.FileField(storage=package_storage, max_length=300, blank=True)
    upload_size = models.PositiveBigIntegerField(default=0)
    upload_sha256 = models.CharField(max_length=64, blank=True)
    outputs = models.JSONField(default=dict)
    warnings = models.JSONField(default=list)
    # The Xcalls found at upload in the workbooks it writes, by workbook path: the worker reuses
    # them instead of reading the workbooks again (the stored package does not change).
    workbook_xcalls = models.JSONField(null=True, blank=True)

    objects = ImportJobQuerySet.as_manager()

    class Meta(BackgroundJob.Meta):
        indexes = [
            *BackgroundJob.Meta.indexes,
            # Only the uploads still stored (as exportjob_stored_package).
            models.Index(
                fields=["upload"], include=["tenant", "upload_size", "finished_at"], condition=~models.Q(upload=""),
                name="importjob_stored_upload",
            ),
        ]

    def __str__(self):
        return f"import {self.id} ({self.status})"


class AuditAction(models.TextChoices):
    CREATED = "created"
    CANCELLED = "cancelled"
    DOWNLOADED = "downloaded"
    RERUN = "rerun"
    PACKAGE_DELETED = "package_deleted"


class AuditEvent(models.Model):
    """Who did what to a job, and with which credential."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="audit_events")
    job_kind = models.CharField(max_length=8, choices=[("export", "export"), ("import", "import")])
    job_id = models.UUIDField(db_index=True)
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    actor = models.CharField(max_length=150)
    credential = models.CharField(max_length=200)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self):
        return f"{self.actor} {self.action} {self.job_kind} {self.job_id}"


# Webhooks live in their own package (exports/webhooks/), registered in this app.
from exports.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint  # noqa: E402, F401
