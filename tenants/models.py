"""Tenants, who may act in them, and the catalog of folders, services and versions."""
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from sparkexport.snapshots.writes import SnapshotQuerySet
from tenants.naming import catalog_name_problem

MB = 1024 * 1024


def validate_catalog_name(name: str) -> None:
    if problem := catalog_name_problem(name):
        raise ValidationError(f"Invalid name {name!r}: {problem}.")

tenant_slug_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{0,62}$",
    "A tenant slug is 1-63 lowercase letters, digits or '-', starting with a letter or digit.",
)


class Tenant(models.Model):
    """An isolated customer space: the first path segment of every tenant API."""

    slug = models.CharField(max_length=63, unique=True, validators=[tenant_slug_validator])
    export_api_job_limit = models.PositiveIntegerField(default=1)
    import_api_job_limit = models.PositiveIntegerField(default=1)
    max_package_bytes = models.PositiveBigIntegerField(default=200 * MB)
    job_timeout_seconds = models.PositiveIntegerField(default=15 * 60)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        base_manager_name = "objects"
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class Group(models.TextChoices):
    """Spark's user groups; supervisors see every job of their tenant."""

    SUPERVISOR = "supervisor:pf", "supervisor:pf"
    USER = "user:pf", "user:pf"


class Membership(models.Model):
    """A Django user's membership of a tenant, in one of Spark's groups."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tenant_memberships"
    )
    group = models.CharField(max_length=32, choices=Group.choices, default=Group.USER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user")
        ]

    def __str__(self):
        return f"{self.user} in {self.tenant} ({self.group})"

    @property
    def is_supervisor(self) -> bool:
        return self.group == Group.SUPERVISOR


class Permission(models.TextChoices):
    """Spark feature permissions an API key can carry."""

    EXPORTS = "Spark.Exports.json"
    IMPORTS = "Spark.Imports.json"
    ALL = "Spark.AllEncompassingProxy.json"


class ApiKey(models.Model):
    """A tenant's API key; only a SHA-256 of the secret is stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    permissions = models.JSONField(default=list)
    is_supervisor = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        base_manager_name = "objects"
        ordering = ["tenant", "name"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.tenant})"

    def allows(self, *permissions: str) -> bool:
        granted = set(self.permissions)
        return Permission.ALL in granted or any(p in granted for p in permissions)


class OAuthClient(models.Model):
    """Binds an OAuth2 application (client credentials) to a tenant and the user it acts as."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="oauth_clients")
    application = models.OneToOneField(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="tenant_client"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "OAuth client"

    def __str__(self):
        return f"{self.application.name} ({self.tenant})"


class Folder(models.Model):
    """A named container of services within a tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="folders")
    name = models.CharField(max_length=100, validators=[validate_catalog_name])
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        base_manager_name = "objects"
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="folder_unique_name")
        ]

    def __str__(self):
        return self.name


class Service(models.Model):
    """A workbook turned into an API, with its versions."""

    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=100, validators=[validate_catalog_name])
    service_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        base_manager_name = "objects"
        ordering = ["folder", "name"]
        constraints = [
            models.UniqueConstraint(fields=["folder", "name"], name="service_unique_name")
        ]

    def __str__(self):
        return f"{self.folder.name}/{self.name}"


def workbook_upload_to(version, filename):
    return f"catalog/{version.version_id}/workbook/{filename}"


def neuron_upload_to(version, filename):
    return f"catalog/{version.version_id}/neuron.zip"


class ServiceVersion(models.Model):
    """One semantic version of a service: its workbook and, once compiled, its Neuron package."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=32)
    major = models.PositiveIntegerField()
    minor = models.PositiveIntegerField()
    patch = models.PositiveIntegerField()
    version_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    release_note = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    effective_start_date = models.DateTimeField(null=True, blank=True)
    effective_end_date = models.DateTimeField(null=True, blank=True)
    compiler_version = models.CharField(max_length=64, blank=True)
    author = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    workbook = models.FileField(upload_to=workbook_upload_to, max_length=300)
    workbook_name = models.CharField(max_length=100)
    workbook_size = models.PositiveBigIntegerField()
    workbook_sha256 = models.CharField(max_length=64)
    neuron = models.FileField(upload_to=neuron_upload_to, max_length=300, blank=True)
    neuron_size = models.PositiveBigIntegerField(null=True, blank=True)
    neuron_sha256 = models.CharField(max_length=64, blank=True)
    # CRC-32s, which a package's ZIP headers need: recorded once, they are the packaging's
    # check of the stored bytes instead of a second SHA-256 pass (exports/packages/writer.py).
    # None until known: the first export of an older version records them.
    workbook_crc32 = models.PositiveBigIntegerField(null=True, blank=True)
    neuron_crc32 = models.PositiveBigIntegerField(null=True, blank=True)
    # When its workbook's Xcalls were read (tenants/xcalls.py); None for a version added before
    # they were recorded: `manage.py catalog_dependencies --apply` reads them.
    xcalls_scanned_at = models.DateTimeField(null=True, blank=True)
    # Lineage of a version an import wrote (exports/imports/lineage.py); empty for one added
    # here. The job is named by its id alone: the catalog sits below the import jobs.
    imported_by_job = models.UUIDField(null=True, blank=True)
    imported_from_tenant = models.CharField(max_length=100, blank=True)
    imported_from_installation = models.CharField(max_length=200, blank=True)
    imported_from_version_id = models.UUIDField(null=True, blank=True)
    imported_package_sha256 = models.CharField(max_length=64, blank=True)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        base_manager_name = "objects"
        ordering = ["service", "major", "minor", "patch"]
        constraints = [
            models.UniqueConstraint(fields=["service", "version"], name="version_unique_semver")
        ]

    def __str__(self):
        return f"{self.service}[{self.version}]"

    @property
    def is_compiled(self) -> bool:
        return bool(self.neuron)

    @property
    def is_imported(self) -> bool:
        return self.imported_by_job is not None

    @property
    def semver(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)


class VersionXcall(models.Model):
    """A service a version's workbook calls (an Xcall, tenants/xcalls.py): the reference as
    written, or the expression of a dynamic one, which cannot be resolved."""

    version = models.ForeignKey(ServiceVersion, on_delete=models.CASCADE, related_name="xcalls")
    reference = models.CharField(max_length=300)
    dynamic = models.BooleanField(default=False)
    cell = models.CharField(max_length=200, help_text="Where it is first found, as Sheet!A1.")
    occurrences = models.PositiveIntegerField(default=1)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        base_manager_name = "objects"
        ordering = ["version", "reference"]
        verbose_name = "Xcall"
        constraints = [
            models.UniqueConstraint(fields=["version", "reference", "dynamic"], name="versionxcall_unique_reference")
        ]

    def __str__(self):
        return f"{self.version} calls {self.reference}{' (dynamic)' if self.dynamic else ''}"
