"""Writes to tenants, credentials and the catalog. Management commands and the admin call these."""
import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone
from oauth2_provider.models import Application

from sparkexport.errors import Conflict, InvalidRequest, NotFound
from sparkexport.storage import file_digests
from tenants import artifacts
from tenants.catalog_xcalls import version_xcalls_record
from tenants.xcalls import Xcall, workbook_xcalls
from tenants.models import (
    MB,
    ApiKey,
    Folder,
    Group,
    Membership,
    OAuthClient,
    Permission,
    Service,
    ServiceVersion,
    Tenant,
    tenant_slug_validator,
)
from tenants.naming import catalog_name_problem, parse_semver
from tenants.selectors import hash_secret

DEFAULT_KEY_PERMISSIONS = [Permission.EXPORTS, Permission.IMPORTS]
MAX_TENANT_SETTING = 1_000_000  # keeps minutes * 60 and MB * MB inside their integer columns


def tenant_create(
    *, slug: str, export_job_limit: int = 1, max_package_mb: int = 200, job_timeout_minutes: int = 15
) -> Tenant:
    """A new tenant with its job limit, package size limit and job timeout."""
    # fullmatch: the validator's `$` would also accept a trailing newline.
    if not tenant_slug_validator.regex.fullmatch(slug or ""):
        raise InvalidRequest(f"Invalid tenant slug {slug!r}: {tenant_slug_validator.message}")
    if min(export_job_limit, max_package_mb, job_timeout_minutes) < 1:
        raise InvalidRequest("The job limit, package size and timeout must each be at least 1.")
    if max(export_job_limit, max_package_mb, job_timeout_minutes) > MAX_TENANT_SETTING:
        raise InvalidRequest(
            f"The job limit, package size (MB) and timeout (minutes) must each be at most {MAX_TENANT_SETTING}."
        )
    try:
        with transaction.atomic():  # a savepoint, so a caller's transaction survives the conflict
            return Tenant.objects.create(
                slug=slug,
                export_api_job_limit=export_job_limit,
                max_package_bytes=max_package_mb * MB,
                job_timeout_seconds=job_timeout_minutes * 60,
            )
    except IntegrityError:
        raise Conflict(f"Tenant '{slug}' already exists.", code="TENANT_EXISTS") from None


def tenant_get_or_error(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise NotFound(f"Tenant '{slug}' does not exist; create it with tenant_create {slug}.")
    return tenant


def member_add(*, tenant: Tenant, username: str, supervisor: bool = False, password: str | None = None) -> Membership:
    """Make `username` (created if needed) a member; supervisors get admin access (staff)."""
    user, created = get_user_model().objects.get_or_create(username=username)
    if created and not password:
        user.set_unusable_password()
    if password:
        user.set_password(password)
    if supervisor:
        user.is_staff = True
    user.save()
    membership, _ = Membership.objects.update_or_create(
        tenant=tenant,
        user=user,
        defaults={"group": Group.SUPERVISOR if supervisor else Group.USER},
    )
    return membership


def apikey_create(
    *,
    tenant: Tenant,
    name: str,
    permissions: list[str] | None = None,
    supervisor: bool = False,
    rotate: bool = False,
) -> tuple[ApiKey, str]:
    """A new API key and its secret, which is returned here once and never stored."""
    permissions = list(dict.fromkeys(permissions or DEFAULT_KEY_PERMISSIONS))
    unknown = sorted(set(permissions) - set(Permission.values))
    if unknown:
        raise InvalidRequest(
            f"Unknown permission {unknown[0]!r}; choose from {', '.join(Permission.values)}."
        )
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        if rotate:
            ApiKey.objects.filter(tenant=tenant, name=name, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
        api_key = ApiKey.objects.create(
            tenant=tenant,
            name=name,
            prefix=prefix,
            secret_hash=hash_secret(secret),
            permissions=permissions,
            is_supervisor=supervisor,
        )
    return api_key, f"{prefix}.{secret}"


def apikey_revoke(*, api_key: ApiKey) -> bool:
    """Revoke a live API key; False if it was already revoked."""
    return bool(ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()))


def oauth_client_revoke(*, client: OAuthClient) -> None:
    """Delete the client's OAuth application, with its tokens and the tenant binding."""
    Application.objects.filter(pk=client.application_id).delete()


def oauth_client_create(
    *, tenant: Tenant, name: str, username: str, rotate: bool = False
) -> tuple[OAuthClient, str, str]:
    """A client-credentials OAuth2 client acting as a tenant member: (client, id, secret)."""
    membership = Membership.objects.filter(tenant=tenant, user__username=username).select_related("user").first()
    if membership is None:
        raise InvalidRequest(
            f"User '{username}' is not a member of tenant '{tenant.slug}'. "
            f"Add it first: manage.py member_add {tenant.slug} {username}."
        )
    client_secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        if rotate:
            Application.objects.filter(tenant_client__tenant=tenant, name=name).delete()
        application = Application.objects.create(
            name=name,
            user=membership.user,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            client_secret=client_secret,
            hash_client_secret=True,
        )
        client = OAuthClient.objects.create(tenant=tenant, application=application, user=membership.user)
    return client, application.client_id, client_secret


def _checked_name(kind: str, name: str) -> str:
    problem = catalog_name_problem(name)
    if problem:
        raise InvalidRequest(f"Invalid {kind} name {name!r}: {problem}.")
    return name


def service_version_add(
    *,
    tenant: Tenant,
    folder: str,
    service: str,
    version: str,
    workbook_path: str | os.PathLike,
    workbook_name: str | None = None,
    neuron_path: str | os.PathLike | None = None,
    release_note: str = "",
    author: str = "",
    compiler_version: str = "",
) -> ServiceVersion:
    """Store a validated workbook (and Neuron package, if compiled) as a new version.

    Folder and service are created when missing. Files are stored before the row is
    written and deleted again if the row cannot be, so a failure leaves nothing behind.
    """
    _checked_name("folder", folder)
    _checked_name("service", service)
    semver = parse_semver(version)
    if semver is None:
        raise InvalidRequest(f"Invalid version {version!r}: use MAJOR.MINOR.PATCH, e.g. 1.0.0.")
    workbook_path = Path(workbook_path)
    workbook_name = workbook_name or workbook_path.name
    _validate_artifacts(workbook_path, workbook_name, neuron_path)
    calls = _read_xcalls(workbook_path, workbook_name)
    workbook_sha256, workbook_crc32 = file_digests(workbook_path)
    version_obj = ServiceVersion(
        version=version,
        major=semver[0],
        minor=semver[1],
        patch=semver[2],
        release_note=release_note,
        author=author,
        compiler_version=compiler_version or ("Neuron_v1.25.0" if neuron_path else ""),
        workbook_name=workbook_name,
        workbook_size=workbook_path.stat().st_size,
        workbook_sha256=workbook_sha256,
        workbook_crc32=workbook_crc32,
    )
    with open(workbook_path, "rb") as handle:
        version_obj.workbook.save(workbook_name, File(handle), save=False)
    try:
        if neuron_path is not None:
            _store_neuron(version_obj, Path(neuron_path))
        _insert_version(version_obj, tenant, folder, service, calls)
    except BaseException:
        version_obj.workbook.delete(save=False)
        if version_obj.neuron:
            version_obj.neuron.delete(save=False)
        raise
    return version_obj


def _validate_artifacts(workbook_path: Path, workbook_name: str, neuron_path) -> None:
    try:
        artifacts.validate_workbook(workbook_path, workbook_name)
        if neuron_path is not None:
            artifacts.validate_neuron_package(neuron_path)
    except artifacts.ArtifactError as exc:
        raise InvalidRequest(str(exc), code=exc.code) from None


def _read_xcalls(workbook_path: Path, workbook_name: str) -> list[Xcall]:
    """The services the workbook calls (tenants/xcalls.py); its formulas must be readable."""
    try:
        return workbook_xcalls(workbook_path)
    except Exception as exc:  # a workbook openpyxl opened for validation but cannot walk
        raise InvalidRequest(
            f"{workbook_name!r} is not an Excel workbook: its formulas could not be read "
            f"({type(exc).__name__}). Upload the .xlsx or .xlsm file saved by Excel.",
            code=artifacts.INVALID_WORKBOOK,
        ) from None


def _store_neuron(version: ServiceVersion, neuron_path: Path) -> None:
    version.neuron_size = neuron_path.stat().st_size
    version.neuron_sha256, version.neuron_crc32 = file_digests(neuron_path)
    with open(neuron_path, "rb") as handle:
        version.neuron.save("neuron.zip", File(handle), save=False)


def _insert_version(version: ServiceVersion, tenant: Tenant, folder: str, service: str, calls: list[Xcall]) -> None:
    """The version's row and its Xcalls, its folder and service made when missing;
    VERSION_EXISTS if taken."""
    exists = Conflict(
        f"{folder}/{service}[{version.version}] already exists; choose a new version number.",
        code="VERSION_EXISTS",
    )
    with transaction.atomic():
        folder_obj, _ = Folder.objects.get_or_create(tenant=tenant, name=folder)
        _refuse_case_variant(folder_obj, service)
        service_obj, _ = Service.objects.get_or_create(folder=folder_obj, name=service)
        if service_obj.versions.filter(version=version.version).exists():
            raise exists
        version.service = service_obj
        try:
            with transaction.atomic():
                version.save()
        except IntegrityError:  # the same version added concurrently
            raise exists from None
        version_xcalls_record(version, calls)


def _refuse_case_variant(folder: Folder, service: str) -> None:
    """SERVICE_NAME_CONFLICT when the folder holds a service whose name differs only in case."""
    variant = Service.objects.filter(folder=folder, name__iexact=service).exclude(name=service).first()
    if variant is not None:
        raise Conflict(
            f"{folder.name}/{service} would differ only in case from {folder.name}/{variant.name}, which a "
            f"case-insensitive file system cannot tell apart: add the version to {folder.name}/{variant.name}, "
            "or choose another name.",
            code="SERVICE_NAME_CONFLICT",
        )


def apikey_revoke_matching(*, tenant: Tenant, name: str | None = None, prefix: str | None = None) -> list[ApiKey]:
    """Revoke the tenant's live keys of this name, or its key with this prefix; answers them."""
    if bool(name) == bool(prefix):
        raise InvalidRequest("Name the keys to revoke with exactly one of --name and --prefix.")
    keys = ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True)
    keys = list(keys.filter(name=name) if name else keys.filter(prefix=prefix))
    if not keys:
        raise NotFound(f"Tenant '{tenant.slug}' has no live API key {'named ' + repr(name) if name else 'with prefix ' + repr(prefix)}.")
    ApiKey.objects.filter(pk__in=[key.pk for key in keys], revoked_at__isnull=True).update(revoked_at=timezone.now())
    return keys
