"""What an export request selects: its references resolved to versions, checked, and sized.

A repeat of a request is not resolved again while the catalog is unchanged (its snapshot
token says so, sparkexport/snapshots/). The tenant's size and job limits are checked when the
job is created, on the locked tenant row (exports/services.py).
"""
import time
from dataclasses import dataclass

from django.conf import settings

from exports.dependencies import export_dependencies
from exports.lifecycle import request_fingerprint
from exports.packages.contents import estimated_package_size, package_entries
from exports.packages.reuse import content_key
from tenants.references import parse_service_reference, parse_uuid
from exports.selectors import export_selection_resolve
from sparkexport import snapshots
from sparkexport.errors import InvalidServiceUri, Unprocessable
from tenants.models import Tenant
from tenants.snapshot_scopes import CATALOG_SCOPE


@dataclass(frozen=True)
class Selection:
    """What an export request resolved to: all that creating its job needs."""

    version_pks: tuple[int, ...]
    estimated_size: int
    content_key: str
    dependencies: tuple[dict, ...]  # outputs.dependencies[]


def _parse_version_ids(values: list[str]):
    parsed = []
    for value in values:
        version_id = parse_uuid(value)
        if version_id is None:
            raise InvalidServiceUri(
                f"inputs.version_ids holds {value!r}, which is not a version_id UUID.",
                details={"version_id": value},
            )
        parsed.append(version_id)
    return parsed


def _check_compiled(versions) -> None:
    uncompiled = [str(version) for version in versions if not version.is_compiled]
    if uncompiled:
        raise Unprocessable(
            f"{uncompiled[0]} has no compiled Neuron package, so it cannot be exported. "
            "Compile it, or leave it out of the selection.",
            code="NEURON_NOT_COMPILED",
            details={"service_versions": uncompiled},
        )


def _resolve(
    tenant: Tenant, *, folders, services, version_ids, file_filter, version_filter, include_dependencies
) -> Selection:
    selected = export_selection_resolve(
        tenant=tenant,
        folders=folders,
        refs=[parse_service_reference(service) for service in services],
        version_ids=_parse_version_ids(version_ids),
        version_filter=version_filter,
    )
    dependencies = export_dependencies(tenant, selected, include=include_dependencies)
    versions = dependencies.versions
    _check_compiled(versions)
    entries = package_entries(
        tenant_slug=tenant.slug, versions=versions, file_filter=file_filter, version_filter=version_filter,
        dependencies=dependencies.rows, source_installation=settings.INSTALLATION_NAME,
    )
    size = estimated_package_size(versions, file_filter)
    return Selection(tuple(version.pk for version in versions), size, content_key(entries), tuple(dependencies.rows))


def export_selection(tenant: Tenant, **request) -> Selection:
    """The selection of a request (folders, services, version_ids, file_filter, version_filter,
    include_dependencies): kept per process while the catalog's token is unchanged."""
    scopes = [CATALOG_SCOPE]
    born = time.monotonic()
    tokens = snapshots.current_tokens(scopes)
    current = tuple(tokens.values()) if tokens and None not in tokens.values() else None
    memo_key = ("export-selection", tenant.pk, request_fingerprint(request))
    if current and (selection := snapshots.store.get(memo_key, current)):
        return selection
    selection = _resolve(tenant, **request)
    if current:
        snapshots.store.put(
            memo_key, current, selection, born=born, weight=1 + len(selection.version_pks) // 100, owner=tenant.slug
        )
    elif tokens is not None:
        snapshots.tokens_start([scope for scope in scopes if tokens[scope] is None])
    return selection
