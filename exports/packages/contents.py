"""What goes into an export package, and the rows that describe it.

Layout (see the contract's "Package layout"): `manifest.json` first, then per version
`{folder}/{service}/{version}/version.json`, the original workbook (migrate only) and
`neuron.zip`, sorted by path. Nothing here depends on the job or the clock, so the same
selection always gives the same bytes.
"""
import json

from exports.models import FileFilter
from exports.packages.format import (
    MANIFEST_NAME,
    NEURON_ENTRY_NAME,
    PACKAGE_FORMAT,
    PACKAGE_FORMAT_VERSION,
    VERSION_JSON_NAME,
)
from exports.packages.writer import Entry, bytes_entry
from sparkexport.storage import open_stream

# Upper bound of what a version adds besides its files: version.json, ZIP headers.
PER_VERSION_OVERHEAD = 8 * 1024
PACKAGE_OVERHEAD = 16 * 1024


def json_bytes(value) -> bytes:
    """Canonical JSON: sorted keys and no indentation, which keeps json's C encoder in use
    (indent falls back to the pure-Python one, most of a repeat export's time)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _iso(value):
    return value.isoformat() if value else None


def service_rows(versions) -> list[dict]:
    """outputs.services[]: each exported service once, sorted by folder and service."""
    rows = {}
    for version in versions:
        service = version.service
        rows[(service.folder.name, service.name)] = {
            "service_uri_source": f"{service.folder.name}/{service.name}",
            "folder_source": service.folder.name,
            "service_source": service.name,
            "service_id_source": str(service.service_id),
        }
    return [rows[key] for key in sorted(rows)]


def service_version_rows(versions) -> list[dict]:
    """outputs.service_versions[]: sorted by folder, service and semantic version."""
    ordered = sorted(
        versions, key=lambda v: (v.service.folder.name, v.service.name, v.semver)
    )
    return [
        {
            "service_uri_source": f"{v.service.folder.name}/{v.service.name}[{v.version}]",
            "folder_source": v.service.folder.name,
            "service_source": v.service.name,
            "version_source": v.version,
            "service_id_source": str(v.service.service_id),
            "version_id_source": str(v.version_id),
        }
        for v in ordered
    ]


def estimated_package_size(versions, file_filter: str) -> int:
    """An upper bound of the package size: stored files are not compressed further."""
    total = PACKAGE_OVERHEAD
    for version in versions:
        total += PER_VERSION_OVERHEAD + (version.neuron_size or 0)
        if file_filter == FileFilter.MIGRATE:
            total += version.workbook_size
    return total


def _version_metadata(version, file_filter: str) -> dict:
    service = version.service
    metadata = {
        "folder": service.folder.name,
        "service": service.name,
        "service_id": str(service.service_id),
        "version": version.version,
        "version_id": str(version.version_id),
        "release_note": version.release_note,
        "tags": version.tags,
        "effective_start_date": _iso(version.effective_start_date),
        "effective_end_date": _iso(version.effective_end_date),
        "compiler_version": version.compiler_version,
        "author": version.author,
        "created_at": _iso(version.created_at),
        "neuron": {
            "name": NEURON_ENTRY_NAME,
            "size": version.neuron_size,
            "sha256": version.neuron_sha256,
        },
    }
    if file_filter == FileFilter.MIGRATE:
        metadata["workbook"] = {
            "name": version.workbook_name,
            "size": version.workbook_size,
            "sha256": version.workbook_sha256,
        }
    return metadata


def _stored_entry(path: str, field_file, size: int, sha256: str, crc32: int | None) -> Entry:
    return Entry(
        path=path,
        size=size,
        open=lambda: open_stream(field_file.storage, field_file.name),
        sha256=sha256,
        crc32=crc32,
    )


def version_base(version) -> str:
    """The folder of a version's files in the package."""
    return f"{version.service.folder.name}/{version.service.name}/{version.version}"


def package_entries(
    *, tenant_slug: str, versions, file_filter: str, version_filter: str, dependencies: list[dict],
    source_installation: str | None,
) -> list[Entry]:
    """Every entry of the package, manifest first, the rest sorted by path. `dependencies` are
    the rows of outputs.dependencies (exports/dependencies.py)."""
    entries = []
    for version in versions:
        base = version_base(version)
        entries.append(
            bytes_entry(f"{base}/{VERSION_JSON_NAME}", json_bytes(_version_metadata(version, file_filter)))
        )
        if file_filter == FileFilter.MIGRATE:
            entries.append(
                _stored_entry(
                    f"{base}/{version.workbook_name}",
                    version.workbook,
                    version.workbook_size,
                    version.workbook_sha256,
                    version.workbook_crc32,
                )
            )
        entries.append(
            _stored_entry(
                f"{base}/{NEURON_ENTRY_NAME}", version.neuron, version.neuron_size, version.neuron_sha256,
                version.neuron_crc32,
            )
        )
    entries.sort(key=lambda entry: entry.path)
    manifest = {
        "format": PACKAGE_FORMAT,
        "format_version": PACKAGE_FORMAT_VERSION,
        "source_tenant": tenant_slug,
        "source_installation": source_installation,
        "file_filter": file_filter,
        "version_filter": version_filter,
        "services": service_rows(versions),
        "service_versions": service_version_rows(versions),
        "dependencies": dependencies,
        "files": [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in entries],
    }
    return [bytes_entry(MANIFEST_NAME, json_bytes(manifest)), *entries]
