"""A package's version.json is checked field by field at upload, so that a dry run refuses what
the import would (issue 17, item 2); the ids an import promises are the ids it creates (item 5);
services whose names differ only in case do not share a folder (item 6)."""
import hashlib
import io
import json
import zipfile

import pytest

from exports.models import ImportJob, JobStatus
from exports.packages.reader import metadata
from tenants.models import Service, ServiceVersion
from tests.exports.api_helpers import assert_error
from tests.conftest import SparkClient
from tests.factories import make_api_key
from tests.imports.conftest import run_workers
from tests.imports.test_import_api import catalog_state, import_and_run, modify, post_import

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_server_errors")]

TRIAGE = "claims/triage/0.1.0/version.json"


def with_version_json(package: bytes, path: str, **changes) -> bytes:
    """The package with `path`'s version.json changed, its manifest row re-hashed to match."""
    source = zipfile.ZipFile(io.BytesIO(package))
    metadata = {**json.loads(source.read(path)), **changes}
    new = json.dumps(metadata).encode()
    manifest = json.loads(source.read("manifest.json"))
    for row in manifest["files"]:
        if row["path"] == path:
            row.update(size=len(new), sha256=hashlib.sha256(new).hexdigest())
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = {path: new, "manifest.json": json.dumps(manifest).encode()}.get(info.filename, source.read(info))
            target.writestr(info, data)
    return out.getvalue()


BAD_METADATA = {
    "effective_start_date number": ({"effective_start_date": 12345}, "effective_start_date"),
    "effective_start_date impossible": ({"effective_start_date": "2024-13-45T00:00:00"}, "effective_start_date"),
    "effective_end_date not a date": ({"effective_end_date": "tomorrow"}, "effective_end_date"),
    "tags a string": ({"tags": "abc"}, "tags"),
    "tags a number": ({"tags": 5}, "tags"),
    "tags of numbers": ({"tags": [1, 2]}, "tags"),
    "release_note an object": ({"release_note": {"a": 1}}, "release_note"),
    "author a list": ({"author": ["x"]}, "author"),
    "author too long": ({"author": "a" * 300}, "author"),
    "compiler_version too long": ({"compiler_version": "c" * 300}, "compiler_version"),
}


def test_the_reader_checks_the_lengths_the_catalog_stores():
    field = ServiceVersion._meta.get_field
    assert (metadata.MAX_AUTHOR_CHARS, metadata.MAX_COMPILER_VERSION_CHARS) == (
        field("author").max_length, field("compiler_version").max_length
    )


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry run", "import"])
@pytest.mark.parametrize("case", sorted(BAD_METADATA))
def test_invalid_version_metadata_is_refused_by_dry_run_and_import_alike(
    case, dry_run, source, dest, other_tenant, django_capture_on_commit_callbacks
):
    changes, field = BAD_METADATA[case]
    before = catalog_state(other_tenant)
    entity = {"inputs": modify(("claims/triage", None)), "dry_run": dry_run}

    response = post_import(dest, django_capture_on_commit_callbacks, with_version_json(source, TRIAGE, **changes), entity)

    assert_error(response, 422, "INVALID_IMPORT_ZIP", field, "claims/triage[0.1.0]")
    assert catalog_state(other_tenant) == before
    assert not ImportJob.objects.exists()


def test_valid_version_metadata_is_imported_as_written(source, dest, other_tenant, django_capture_on_commit_callbacks):
    package = with_version_json(
        source, TRIAGE, tags=["a", "b"], release_note="note", author="Ann", compiler_version="Neuron_v1.2.3",
        effective_start_date="2024-02-03T04:05:06Z", effective_end_date=None,
    )

    status = import_and_run(dest, django_capture_on_commit_callbacks, package, {"inputs": modify(("claims/triage", None))})

    assert status["status"] == "closed", status
    version = ServiceVersion.objects.get(service__folder__tenant=other_tenant)
    assert (version.tags, version.release_note, version.author, version.compiler_version) == (
        ["a", "b"], "note", "Ann", "Neuron_v1.2.3"
    )
    assert version.effective_start_date.isoformat() == "2024-02-03T04:05:06+00:00"
    assert version.effective_end_date is None


# --- 5. the ids promised are the ids created ----------------------------------------------


def test_ids_answered_at_upload_are_the_ids_created(tenant, source, django_capture_on_commit_callbacks):
    """Into the tenant it came from, under new names: its source ids are taken, so new ones are made."""
    api = SparkClient(tenant.slug, make_api_key(tenant, name="importer"))
    entity = {"inputs": modify(("pricing/quote", "pricing/quote-copy"), ("claims/triage", "claims/triage-copy"))}

    answered = post_import(api, django_capture_on_commit_callbacks, source, entity)
    assert answered.status_code == 200, answered.json()
    with django_capture_on_commit_callbacks(execute=True):
        run_workers()
    final = api.get(api.api(f"import/{answered.json()['id']}/status")).json()

    assert final["status"] == JobStatus.CLOSED, final
    assert ids_of(final) == ids_of(answered.json())
    for uri, service_id in ids_of(final)["services"].items():
        folder, name = uri.split("/")
        assert str(Service.objects.get(folder__tenant=tenant, folder__name=folder, name=name).service_id) == service_id
    created = {str(v) for v in ServiceVersion.objects.filter(service__name__endswith="-copy").values_list("version_id", flat=True)}
    assert created == set(ids_of(final)["versions"].values())


def ids_of(status: dict) -> dict:
    outputs = status["outputs"]
    return {
        "services": {row["service_uri_destination"]: row["service_id_destination"] for row in outputs["services"]},
        "versions": {row["service_uri_destination"]: row["version_id_destination"] for row in outputs["service_versions"]},
    }
