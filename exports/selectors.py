"""Reads for exports: resolving a request's references to versions, and finding jobs.

Resolution runs a fixed number of queries whatever the size of the selection.
"""
import uuid
from collections import defaultdict
from datetime import timedelta

from django.db import connections
from django.db.models import Count, Prefetch, Q
from django.utils import timezone

from exports.models import ACTIVE_STATES, ExportJob, ImportJob, VersionFilter, job_visible_to, visibility
from tenants.references import NamedRef, ServiceIdRef, VersionIdRef, is_version_specific
from sparkexport.errors import NotFound, Unprocessable
from tenants.catalog_lookup import pair_conditions, rows_where_any
from tenants.models import Folder, Service, ServiceVersion, Tenant

RECENT_WINDOW = timedelta(hours=1)


def _versions(tenant: Tenant):
    return ServiceVersion.objects.filter(service__folder__tenant=tenant).select_related(
        "service__folder"
    )


def _sort_key(version: ServiceVersion):
    return (version.service.folder.name, version.service.name, version.semver)


def _matches_prefix(version: ServiceVersion, prefix: tuple[int, ...]) -> bool:
    return version.semver[: len(prefix)] == prefix


def _format_prefix(prefix: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in prefix)


def _services_by_name(tenant, refs: list[NamedRef]) -> dict[tuple[str, str], Service]:
    if not refs:
        return {}
    pairs = {(ref.folder, ref.service) for ref in refs}
    found = rows_where_any(
        Service.objects.filter(folder__tenant=tenant).select_related("folder"),
        pair_conditions(pairs, folder="folder__name", name="name"),
    )
    by_name = {key: service for service in found if (key := (service.folder.name, service.name)) in pairs}
    missing = sorted({ref.uri for ref in refs if (ref.folder, ref.service) not in by_name})
    if missing:
        raise NotFound(
            f"Service {missing[0]} was not found in tenant '{tenant.slug}'. Check the folder "
            "and service names (they are case-sensitive).",
            code="SERVICE_NOT_FOUND",
            details={"services": missing},
        )
    return by_name


def _services_by_id(tenant, refs: list[ServiceIdRef]) -> dict[uuid.UUID, Service]:
    if not refs:
        return {}
    ids = {ref.service_id for ref in refs}
    found = {
        service.service_id: service
        for service in Service.objects.filter(
            folder__tenant=tenant, service_id__in=ids
        ).select_related("folder")
    }
    missing = sorted(str(service_id) for service_id in ids - found.keys())
    if missing:
        raise NotFound(
            f"No service with service_id {missing[0]} exists in tenant '{tenant.slug}'.",
            code="SERVICE_NOT_FOUND",
            details={"service_ids": missing},
        )
    return found


def _folders(tenant, names: list[str]) -> list[Folder]:
    if not names:
        return []
    found = {
        folder.name: folder
        for folder in Folder.objects.filter(tenant=tenant, name__in=names).annotate(
            version_count=Count("services__versions")
        )
    }
    missing = sorted(set(names) - found.keys())
    if missing:
        raise NotFound(
            f"Folder '{missing[0]}' was not found in tenant '{tenant.slug}'. Check the name "
            "(it is case-sensitive).",
            code="FOLDER_NOT_FOUND",
            details={"folders": missing},
        )
    empty = sorted(name for name, folder in found.items() if folder.version_count == 0)
    if empty:
        raise Unprocessable(
            f"Folder '{empty[0]}' holds no service with a version, so there is nothing to "
            "export from it. Remove it from inputs.folders.",
            code="FOLDER_HAS_NO_SERVICE",
            details={"folders": empty},
        )
    return list(found.values())


def _versions_by_id(tenant, version_ids: set[uuid.UUID]) -> list[ServiceVersion]:
    if not version_ids:
        return []
    found = list(_versions(tenant).filter(version_id__in=version_ids))
    missing = sorted(str(v) for v in version_ids - {version.version_id for version in found})
    if missing:
        raise NotFound(
            f"No service version with version_id {missing[0]} exists in tenant "
            f"'{tenant.slug}'.",
            code="VERSION_NOT_FOUND",
            details={"version_ids": missing},
        )
    return found


def export_selection_resolve(
    *,
    tenant: Tenant,
    folders: list[str],
    refs: list,
    version_ids: list[uuid.UUID],
    version_filter: str,
) -> list[ServiceVersion]:
    """The union of versions the inputs select, sorted by folder, service and semver."""
    if version_filter == VersionFilter.LATEST:
        _refuse_specific_versions(refs, version_ids)
    named = [ref for ref in refs if isinstance(ref, NamedRef)]
    by_name = _services_by_name(tenant, named)
    by_id = _services_by_id(tenant, [ref for ref in refs if isinstance(ref, ServiceIdRef)])
    folder_list = _folders(tenant, folders)
    exact = _versions_by_id(
        tenant, set(version_ids) | {ref.version_id for ref in refs if isinstance(ref, VersionIdRef)}
    )
    service_pks = {service.pk for service in [*by_name.values(), *by_id.values()]}
    candidates = list(
        _versions(tenant).filter(Q(service__pk__in=service_pks) | Q(service__folder__in=folder_list))
    )
    versions_of = defaultdict(list)
    for version in sorted(candidates, key=lambda version: version.semver):
        versions_of[version.service_id].append(version)

    referenced = [by_id[ref.service_id] for ref in refs if isinstance(ref, ServiceIdRef)]
    referenced += [by_name[(ref.folder, ref.service)] for ref in named if ref.version is None]
    _check_have_versions(referenced, versions_of)
    folder_pks = {folder.pk for folder in folder_list}
    whole_services = {service.pk for service in referenced}
    whole_services |= {v.service_id for v in candidates if v.service.folder_id in folder_pks}

    selected = {version.pk: version for version in exact}
    for service_pk in whole_services:
        service_versions = versions_of.get(service_pk, [])
        selected.update((v.pk, v) for v in (service_versions[-1:] if version_filter == VersionFilter.LATEST else service_versions))
    for ref in named:
        if ref.version is not None:
            version = _highest_matching(by_name[(ref.folder, ref.service)], ref, versions_of)
            selected[version.pk] = version
    if not selected:
        raise NotFound("The selected services have no versions to export.", code="VERSION_NOT_FOUND")
    return sorted(selected.values(), key=_sort_key)


def _refuse_specific_versions(refs: list, version_ids: list[uuid.UUID]) -> None:
    specific = [ref.raw for ref in refs if is_version_specific(ref)]
    specific += [str(version_id) for version_id in version_ids]
    if specific:
        raise Unprocessable(
            f"version_filter 'latest' cannot be combined with a reference to a specific "
            f"version ({specific[0]}). Use version_filter 'all', or drop the version.",
            code="VERSION_FILTER_CONFLICT",
            details={"references": specific},
        )


def _check_have_versions(services: list[Service], versions_of) -> None:
    empty = sorted({str(service) for service in services if not versions_of.get(service.pk)})
    if empty:
        raise NotFound(
            f"Service {empty[0]} has no versions, so there is nothing to export from it. "
            "Add a version, or leave it out of inputs.services.",
            code="VERSION_NOT_FOUND",
            details={"services": empty},
        )


def _highest_matching(service: Service, ref: NamedRef, versions_of) -> ServiceVersion:
    matching = [v for v in versions_of.get(service.pk, []) if _matches_prefix(v, ref.version)]
    if not matching:
        available = ", ".join(v.version for v in versions_of.get(service.pk, [])[-10:])
        raise NotFound(
            f"No version of {ref.uri} matches '{_format_prefix(ref.version)}'"
            + (f"; its versions are {available}." if available else "; it has no versions."),
            code="VERSION_NOT_FOUND",
            details={"reference": ref.raw},
        )
    return matching[-1]


def _parse_job_id(job_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(job_id))
    except ValueError:
        return None


def _job_get(jobs, caller, job_id: str):
    parsed = _parse_job_id(job_id)
    job = jobs.filter(pk=parsed).first() if parsed else None
    if job is None:
        kind = jobs.model.kind
        raise NotFound(
            f"{kind.capitalize()} job {job_id} was not found in tenant '{caller.tenant.slug}', or it "
            f"was started by another caller. Use the id returned by POST {kind}.",
            code="JOB_NOT_FOUND",
        )
    return job


# The versions of a status document: only the columns its rows show, and unordered (the rows
# are sorted in Python; the model's ordering, service → folder → tenant, only adds joins).
# Building the query dominates a status request, and its cost grows with the columns.
STATUS_VERSIONS = (
    ServiceVersion.objects.select_related("service__folder")
    .only("version", "major", "minor", "patch", "version_id",
          "service__name", "service__service_id", "service__folder__name")
    .order_by()
)


def export_job_get(caller, job_id: str) -> ExportJob:
    """One visible export job with what its status document needs, or JOB_NOT_FOUND."""
    jobs = ExportJob.objects.visible_to(caller).prefetch_related(Prefetch("versions", queryset=STATUS_VERSIONS))
    job = _job_get(jobs, caller, job_id)
    job.tenant = caller.tenant  # the visible jobs are all the caller's tenant's: no join needed
    return job


def import_job_get(caller, job_id: str) -> ImportJob:
    """One visible import job, or JOB_NOT_FOUND."""
    jobs = ImportJob.objects.visible_to(caller).select_related("tenant")
    return _job_get(jobs, caller, job_id)


def jobs_for_tenant_status(model, caller) -> tuple[list, list, int]:
    """(in progress, finished within the past hour), newest first, and how many jobs the whole
    tenant has in progress.

    One query: the tenant's jobs in progress (all of them, whoever started them: there are at
    most about its job limit) and the caller's recent ones; visibility is applied in Python.
    """
    since = timezone.now() - RECENT_WINDOW
    jobs = list(
        model.objects.filter(tenant=caller.tenant).filter(
            Q(status__in=ACTIVE_STATES) | Q(finished_at__gte=since, **visibility(caller))
        )
    )
    active = [job for job in jobs if job.is_active]
    return (
        [job for job in active if job_visible_to(job, caller)],
        [job for job in jobs if not job.is_active],
        len(active),
    )


def tenant_jobs_status(model, caller) -> dict:
    """GET export/status or import/status: the caller's jobs in progress and of the past hour,
    and the tenant's limit, in Spark's shape (`in_progress_exports`, `export_api_job_limit`, ...)."""
    kind = model.kind
    in_progress, recent, tenant_in_progress = jobs_for_tenant_status(model, caller)
    return {
        f"in_progress_{kind}s": in_progress,
        f"recent_{kind}s": recent,
        "tenant": {
            "configuration": {model.job_limit_field: getattr(caller.tenant, model.job_limit_field)},
            "status": {f"{kind}_api_jobs_in_progress": tenant_in_progress},
        },
    }


def job_creators(model, tenant_ids) -> list[str]:
    """Every `created_by` of a kind's jobs in these tenants (all tenants for None), sorted.

    A loose index scan of (tenant, created_by): per tenant, each creator is one index probe for
    the next name up, so the cost follows the number of creators, not of jobs (SELECT DISTINCT
    would read every job).
    """
    if tenant_ids is not None and not tenant_ids:
        return []
    params = sorted(tenant_ids) if tenant_ids is not None else []
    where = f"WHERE t.id IN ({', '.join(['%s'] * len(params))})" if params else ""
    quote = connections[model.objects.db].ops.quote_name
    jobs, tenants = quote(model._meta.db_table), quote(Tenant._meta.db_table)
    sql = f"""
        WITH RECURSIVE creators (tenant_id, created_by) AS (
            SELECT t.id, (SELECT j.created_by FROM {jobs} j WHERE j.tenant_id = t.id ORDER BY j.created_by LIMIT 1)
            FROM {tenants} t {where}
          UNION ALL
            SELECT c.tenant_id, (SELECT j.created_by FROM {jobs} j WHERE j.tenant_id = c.tenant_id
                                 AND j.created_by > c.created_by ORDER BY j.created_by LIMIT 1)
            FROM creators c WHERE c.created_by IS NOT NULL
        )
        SELECT DISTINCT created_by FROM creators WHERE created_by IS NOT NULL ORDER BY created_by
    """
    with connections[model.objects.db].cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]
