"""Every write to what a snapshot shows replaces the tokens of its scopes, whatever path wrote it.

The models are found, not listed: every table a status poll reads (with snapshots off, so it
reads them all) must belong to a model that feeds snapshots. Every write kind is run against
every such model. A write method Django adds to QuerySet, or a model a poll starts to read,
fails here until it is covered.
"""
import re
import uuid
from pathlib import Path

import pytest
import redis
from django.apps import apps
from django.core import serializers
from django.core.management import call_command
from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exports.models import ExportJob, ExportJobVersion, JobStatus
from exports.snapshot_scopes import job_scope, tenant_jobs_scope
from sparkexport import snapshots
from sparkexport.snapshots import tokens
from sparkexport.snapshots.writes import SnapshotQuerySet, fed_models
from tenants.models import ApiKey, Folder, Service, ServiceVersion, Tenant, VersionXcall
from tenants.snapshot_scopes import CATALOG_SCOPE, tenant_scope
from tests.admin.conftest import make_job, store_package
from tests.conftest import SparkClient
from tests.factories import ServiceVersionFactory, TenantFactory, make_api_key

pytestmark = pytest.mark.django_db

# What a write to a row of each fed model must announce, written out independently of the
# declarations in */snapshot_scopes.py.
EXPECTED_SCOPES = {
    Tenant: lambda tenant: {tenant_scope(tenant.slug)},
    ApiKey: lambda key: {tenant_scope(key.tenant.slug)},
    Folder: lambda folder: {CATALOG_SCOPE},
    Service: lambda service: {CATALOG_SCOPE},
    ServiceVersion: lambda version: {CATALOG_SCOPE},
    VersionXcall: lambda call: {CATALOG_SCOPE},
    ExportJob: lambda job: {job_scope(job.pk), tenant_jobs_scope(job.tenant.slug)},
    ExportJobVersion: lambda row: {job_scope(row.exportjob_id)},
}


# --- which models feed snapshots --------------------------------------------------------


def tables_read(queries) -> set[str]:
    return {
        table
        for query in queries
        if query["sql"].lstrip().upper().startswith("SELECT")
        for table in re.findall(r'(?:FROM|JOIN)\s+"(\w+)"', query["sql"])
    }


def test_every_model_a_status_poll_reads_feeds_snapshots(tenant, settings):
    settings.STATUS_SNAPSHOTS = False  # every poll reads all it shows from the database
    version = ServiceVersionFactory(service__folder__tenant=tenant)
    job = make_job(tenant, versions=[version])
    store_package(job)
    client = SparkClient(tenant.slug, make_api_key(tenant, supervisor=True))
    client.get(client.api("export/status"))  # the key's last use is recorded, not part of a poll
    with CaptureQueriesContext(connection) as queries:
        for path in (f"export/{job.pk}/status", "export/status"):
            assert client.get(client.api(path)).status_code == 200
    by_table = {model._meta.db_table: model for model in apps.get_models(include_auto_created=True)}
    read = {by_table[table] for table in tables_read(queries)}
    assert {ExportJob, ExportJobVersion, ServiceVersion, ApiKey, Tenant} <= read
    assert read <= set(fed_models()), f"read by polls but not fed: {read - set(fed_models())}"
    assert set(fed_models()) == set(EXPECTED_SCOPES), "every fed model needs its EXPECTED_SCOPES here"


@pytest.mark.parametrize("model", sorted(EXPECTED_SCOPES, key=str), ids=lambda model: model.__name__)
def test_every_manager_of_a_fed_model_announces_its_writes(model):
    managers = [*model._meta.managers, model._base_manager, model._default_manager]
    assert all(isinstance(manager.get_queryset(), SnapshotQuerySet) for manager in managers)


QUERYSET_READS = {
    "aaggregate", "acontains", "acount", "aexists", "aexplain", "afirst", "aget", "ain_bulk",
    "aiterator", "alast", "alatest", "aearliest", "aggregate", "alias", "all", "annotate",
    "as_manager", "complex_filter", "contains", "count", "dates", "datetimes", "db", "defer",
    "difference", "distinct", "earliest", "exclude", "exists", "explain", "extra", "filter",
    "first", "get", "in_bulk", "intersection", "iterator", "last", "latest", "none", "only",
    "order_by", "ordered", "prefetch_related", "query", "raw", "reverse", "select_for_update",
    "resolve_expression", "select_related", "union", "using", "values", "values_list",
}
# Each either overridden by SnapshotQuerySet, or built on one that is / on Model.save / delete.
QUERYSET_WRITES = {
    "update", "bulk_create", "bulk_update", "delete", "create", "get_or_create", "update_or_create",
    "aupdate", "abulk_create", "abulk_update", "adelete", "acreate", "aget_or_create", "aupdate_or_create",
}


def test_no_queryset_write_method_goes_unreviewed():
    public = {name for name in dir(models.QuerySet) if not name.startswith("_")}
    assert public - QUERYSET_READS - QUERYSET_WRITES == set(), "a new QuerySet method: which kind is it?"


def test_no_product_code_replaces_tokens_by_hand():
    root = Path(__file__).resolve().parents[2]
    callers = [
        str(path.relative_to(root))
        for package in ("exports", "tenants", "sparkexport")
        for path in (root / package).rglob("*.py")
        if "scopes_changed(" in path.read_text()
    ]
    assert sorted(callers) == ["sparkexport/snapshots/tokens.py", "sparkexport/snapshots/writes.py"]


# --- every write kind, on every fed model -----------------------------------------------


@pytest.fixture
def token_values(settings):
    connection_ = redis.Redis.from_url(settings.REDIS_URL)

    def read(scopes) -> dict:
        snapshots.tokens_start(sorted(scopes))
        return {scope: connection_.get(snapshots.TOKEN_PREFIX + scope) for scope in scopes}

    return read


def assert_announces(token_values, scopes: set[str], write) -> None:
    before = token_values(scopes)
    write()
    after = {scope: value for scope, value in token_values(scopes).items()}
    unchanged = sorted(scope for scope in scopes if after[scope] == before[scope])
    assert not unchanged, f"not announced: {unchanged}"


def build(model):
    """A saved row of `model` in a tenant of its own, with everything it needs."""
    tenant = TenantFactory(slug=f"w{uuid.uuid4().hex[:8]}")
    if model is Tenant:
        return tenant
    if model is ApiKey:
        make_api_key(tenant, name="writer")
        return ApiKey.objects.get(tenant=tenant)
    version = ServiceVersionFactory(service__folder__tenant=tenant)
    if model is ServiceVersion:
        return version
    if model is VersionXcall:
        return VersionXcall.objects.create(version=version, reference="pricing/rating", cell="Sheet1!A1")
    if model is Service:
        return version.service
    if model is Folder:
        return version.service.folder
    job = make_job(tenant, versions=[version])
    if model is ExportJob:
        return job
    return ExportJobVersion.objects.get(exportjob=job)


# A column of each model that snapshots show, and a value to write to it.
SHOWN_COLUMN = {
    Tenant: ("export_api_job_limit", 9),
    ApiKey: ("revoked_at", timezone.now()),
    Folder: ("name", "renamed"),
    Service: ("name", "renamed"),
    ServiceVersion: ("release_note", "changed"),
    VersionXcall: ("reference", "pricing/other"),
    ExportJob: ("status", JobStatus.CANCELLED),
    ExportJobVersion: None,  # a link row: created and deleted, never changed
}


def write_save(row):
    column = SHOWN_COLUMN[type(row)]
    if column:
        setattr(row, *column)
    row.save()


def write_save_update_fields(row):
    column = SHOWN_COLUMN[type(row)]
    if column:
        setattr(row, *column)
        row.save(update_fields=[column[0]])
    else:
        row.save()


def write_update(row):
    column = SHOWN_COLUMN[type(row)]
    values = dict([column]) if column else {"exportjob": row.exportjob}
    type(row).objects.filter(pk=row.pk).update(**values)


def write_base_manager_update(row):
    column = SHOWN_COLUMN[type(row)]
    values = dict([column]) if column else {"exportjob": row.exportjob}
    type(row)._base_manager.filter(pk=row.pk).update(**values)


def write_bulk_update(row):
    column = SHOWN_COLUMN[type(row)]
    if column:
        setattr(row, *column)
    type(row).objects.bulk_update([row], [column[0] if column else "exportjob"])


def write_delete(row):
    row.delete()


def write_queryset_delete(row):
    type(row).objects.filter(pk=row.pk).delete()


WRITES = {
    "save": write_save,
    "save_update_fields": write_save_update_fields,
    "update": write_update,
    "base_manager_update": write_base_manager_update,
    "bulk_update": write_bulk_update,
    "delete": write_delete,
    "queryset_delete": write_queryset_delete,
}


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("model", sorted(EXPECTED_SCOPES, key=str), ids=lambda model: model.__name__)
def test_every_write_of_an_existing_row_is_announced(model, write, token_values):
    row = build(model)
    assert_announces(token_values, EXPECTED_SCOPES[model](row), lambda: WRITES[write](row))


@pytest.mark.parametrize("model", sorted(EXPECTED_SCOPES, key=str), ids=lambda model: model.__name__)
def test_creating_rows_is_announced_however_they_are_created(model, token_values):
    """create() and bulk_create() of a copy of a row: its scopes are announced."""
    template = build(model)
    for how in ("create", "bulk_create"):
        copy = _copy_of(template)
        scopes = EXPECTED_SCOPES[model](copy)

        def create(copy=copy, how=how):
            if how == "create":
                copy.save(force_insert=True)
            else:
                type(copy).objects.bulk_create([copy])

        assert_announces(token_values, scopes, create)


def _copy_of(row):
    copy = type(row).objects.get(pk=row.pk)
    copy.pk = None
    copy._state.adding = True
    if isinstance(copy, Tenant):
        copy.slug = f"c{uuid.uuid4().hex[:8]}"
    elif isinstance(copy, ApiKey):
        copy.prefix = uuid.uuid4().hex[:12]
    elif isinstance(copy, (Folder, Service)):
        copy.name = f"copy-{uuid.uuid4().hex[:6]}"
        if isinstance(copy, Service):
            copy.service_id = uuid.uuid4()
    elif isinstance(copy, ServiceVersion):
        copy.patch = uuid.uuid4().int % 10**6
        copy.version, copy.version_id = f"9.9.{copy.patch}", uuid.uuid4()
    elif isinstance(copy, VersionXcall):
        copy.reference = f"copy/{uuid.uuid4().hex[:6]}"
    elif isinstance(copy, ExportJob):
        copy.id = uuid.uuid4()
    elif isinstance(copy, ExportJobVersion):
        copy.serviceversion = ServiceVersionFactory(
            service=copy.serviceversion.service, version=f"8.8.{uuid.uuid4().int % 10**6}"
        )
    return copy


def _cascading_parents(model) -> list:
    return [
        field for field in model._meta.get_fields()
        if field.many_to_one and field.concrete and field.remote_field.on_delete is models.CASCADE
    ]


CASCADES = [(model, field.name) for model in EXPECTED_SCOPES for field in _cascading_parents(model)]


@pytest.mark.parametrize("model,field_name", CASCADES, ids=lambda value: getattr(value, "__name__", value))
def test_a_cascading_delete_is_announced(model, field_name, token_values):
    row = build(model)
    parent = getattr(row, field_name)
    assert_announces(token_values, EXPECTED_SCOPES[model](row), parent.delete)


def test_a_deletion_that_nulls_a_foreign_key_is_announced(tenant, token_values):
    make_api_key(tenant, name="creator")
    key = ApiKey.objects.get(name="creator")
    job = make_job(tenant, created_by_key=key)
    scopes = {job_scope(job.pk), tenant_jobs_scope(tenant.slug)}  # not the key's own scope
    assert_announces(token_values, scopes, key.delete)
    assert ExportJob.objects.get(pk=job.pk).created_by_key is None


def test_adding_and_removing_versions_of_a_job_is_announced(tenant, token_values):
    version, other = ServiceVersionFactory(service__folder__tenant=tenant), ServiceVersionFactory(service__folder__tenant=tenant)
    job = make_job(tenant, versions=[version])
    scopes = {job_scope(job.pk)}
    assert_announces(token_values, scopes, lambda: job.versions.add(other))
    assert_announces(token_values, scopes, lambda: job.versions.remove(other))
    assert_announces(token_values, scopes, lambda: job.versions.set([other]))
    assert_announces(token_values, scopes, job.versions.clear)


def test_renaming_a_tenant_announces_its_old_and_new_scopes(tenant, token_values):
    scopes = {tenant_scope("acme"), tenant_scope("acme-renamed")}
    assert_announces(token_values, scopes, lambda: Tenant.objects.filter(pk=tenant.pk).update(slug="acme-renamed"))
    tenant.refresh_from_db()
    tenant.slug = "acme"
    assert_announces(token_values, scopes, tenant.save)


def test_a_write_of_only_columns_no_snapshot_shows_announces_nothing(tenant, token_values):
    make_api_key(tenant, name="quiet")
    key = ApiKey.objects.get(name="quiet")
    scopes = {tenant_scope(tenant.slug)}
    before = token_values(scopes)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    assert token_values(scopes) == before


def test_bulk_create_ignoring_conflicts_still_announces(token_values):
    """Without ids back from the database, the scopes come from the rows' own columns."""
    tenant = Tenant(slug="bulk-new")
    assert_announces(token_values, {tenant_scope("bulk-new")}, lambda: Tenant.objects.bulk_create([tenant], ignore_conflicts=True))


def test_a_fixture_load_announces(tenant, token_values, tmp_path):
    tenant.export_api_job_limit = 4
    fixture = tmp_path / "tenant.json"
    fixture.write_text(serializers.serialize("json", [tenant]))
    assert_announces(token_values, {tenant_scope(tenant.slug)}, lambda: call_command("loaddata", str(fixture), verbosity=0))


def test_update_of_an_annotated_queryset_locks_and_announces(tenant, token_values):
    version = ServiceVersionFactory(service__folder__tenant=tenant)
    job = make_job(tenant, versions=[version])
    jobs = ExportJob.objects.annotate(selected=models.Count("versions")).filter(selected__gt=0)
    assert_announces(token_values, {job_scope(job.pk)}, lambda: jobs.update(status=JobStatus.FAILED))
    assert ExportJob.objects.get(pk=job.pk).status == JobStatus.FAILED


def test_a_cascade_announces_each_scope_once(tenant, monkeypatch):
    """Deleting a job with 50 versions replaces its two tokens, not one per version row."""
    versions = [ServiceVersionFactory(service__folder__tenant=tenant, version=f"1.{n}.0") for n in range(50)]
    job = make_job(tenant, versions=versions)
    # The token writes of this process, counted on their way to Redis (the server's own
    # command counters would count every other process using it too).
    written = []
    write = tokens._write
    monkeypatch.setattr(tokens, "_write", lambda scopes, **options: written.extend(scopes) or write(scopes, **options))

    job_id = job.pk
    job.delete()
    assert sorted(set(written)) == sorted({job_scope(job_id), tenant_jobs_scope(tenant.slug)}), written
    assert len(written) <= 4  # the job's scope and its tenant's, now (at commit: again)
