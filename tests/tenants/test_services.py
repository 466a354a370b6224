"""The tenant services behind the management commands, and the naming rules they apply."""
import hashlib
import zlib

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import IntegrityError

from sparkexport.errors import Conflict, InvalidRequest, NotFound
from tenants import demo, services
from tenants.demo import CHAIN, demo_catalog_seed
from tenants.models import MB, ApiKey, Folder, Group, Service, ServiceVersion, Tenant
from tenants.naming import catalog_name_problem, parse_semver
from tenants.selectors import api_key_get_by_secret
from tests.tenants.conftest import stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(db):
    return services.tenant_create(slug="acme")


def add(tenant, workbook, version="1.0.0", **kwargs):
    return services.service_version_add(
        tenant=tenant, folder="insurance", service="term-life", version=version,
        workbook_path=workbook, **kwargs,
    )


# --- naming ---------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("0.0.0", (0, 0, 0)),
    ("1.2.3", (1, 2, 3)),
    ("10.20.300", (10, 20, 300)),
    ("999999999.0.0", (999999999, 0, 0)),
    ("1.0", None), ("v1.0.0", None), ("01.0.0", None), ("1.0.0-rc1", None), ("1.0.0\n", None),
    (" 1.0.0", None), ("1.1٢.0", None), ("1234567890.0.0", None), ("", None), (None, None),
])
def test_parse_semver(text, expected):
    assert parse_semver(text) == expected


@pytest.mark.parametrize("name", ["insurance", "Term Life 2", "a.b", "x_y-z", "a" * 100])
def test_catalog_name_accepted(name):
    assert catalog_name_problem(name) is None


@pytest.mark.parametrize("name", [
    "", ".", "..", "a..b", "a/b", "a\\b", "x[1]", " x", "x ", "x\n", "x\t", "a" * 101, "é", None,
])
def test_catalog_name_refused(name):
    assert catalog_name_problem(name)


# --- tenant_create --------------------------------------------------------------------


def test_tenant_create_defaults_and_options():
    tenant = services.tenant_create(slug="acme")
    assert (tenant.export_api_job_limit, tenant.max_package_bytes, tenant.job_timeout_seconds) == (
        1, 200 * MB, 900,
    )
    other = services.tenant_create(slug="globex", export_job_limit=4, max_package_mb=1, job_timeout_minutes=2)
    assert (other.export_api_job_limit, other.max_package_bytes, other.job_timeout_seconds) == (4, MB, 120)


def test_tenant_create_duplicate_is_a_conflict_and_keeps_the_transaction_usable(acme):
    with pytest.raises(Conflict) as exc:
        services.tenant_create(slug="acme")
    assert exc.value.code == "TENANT_EXISTS" and exc.value.status_code == 409
    assert Tenant.objects.count() == 1  # would raise TransactionManagementError without a savepoint


@pytest.mark.parametrize("slug", ["Bad_Slug", "-x", "a" * 64, "", "acme\n", "acme/x"])
def test_tenant_create_invalid_slug(slug):
    with pytest.raises(InvalidRequest):
        services.tenant_create(slug=slug)


def test_tenant_get_or_error_names_tenant_create():
    with pytest.raises(NotFound) as exc:
        services.tenant_get_or_error("nope")
    assert "tenant_create nope" in exc.value.message


# --- member_add -----------------------------------------------------------------------


def test_member_add_creates_user_without_a_usable_password(acme):
    membership = services.member_add(tenant=acme, username="alice")
    assert membership.group == Group.USER and not membership.is_supervisor
    assert not membership.user.has_usable_password()
    assert not membership.user.check_password("")


def test_member_add_supervisor_then_user_changes_group(acme):
    services.member_add(tenant=acme, username="bob", supervisor=True, password="pw-123456")
    membership = services.member_add(tenant=acme, username="bob")
    assert membership.group == Group.USER
    user = get_user_model().objects.get(username="bob")
    assert user.check_password("pw-123456")
    assert user.tenant_memberships.count() == 1


# --- apikey_create --------------------------------------------------------------------


def test_apikey_create_returns_secret_once(acme):
    api_key, key = services.apikey_create(tenant=acme, name="ci")
    assert api_key_get_by_secret(key) == api_key
    assert key.split(".", 1)[1] not in str(ApiKey.objects.filter(pk=api_key.pk).values().get())


def test_apikey_create_deduplicates_and_checks_permissions(acme):
    api_key, _ = services.apikey_create(
        tenant=acme, name="ci", permissions=["Spark.Exports.json", "Spark.Exports.json"]
    )
    assert api_key.permissions == ["Spark.Exports.json"]
    assert api_key.allows("Spark.Exports.json") and not api_key.allows("Spark.Imports.json")
    with pytest.raises(InvalidRequest) as exc:
        services.apikey_create(tenant=acme, name="ci", permissions=["Spark.Nope.json"])
    assert "Spark.Nope.json" in exc.value.message and "Spark.Exports.json" in exc.value.message


def test_apikey_create_rotate_leaves_other_tenants_alone(acme):
    globex = services.tenant_create(slug="globex")
    _, old = services.apikey_create(tenant=acme, name="ci")
    _, other = services.apikey_create(tenant=globex, name="ci")
    _, new = services.apikey_create(tenant=acme, name="ci", rotate=True)
    assert api_key_get_by_secret(old) is None
    assert api_key_get_by_secret(new) and api_key_get_by_secret(other)


# --- oauth_client_create --------------------------------------------------------------


def test_oauth_client_create_requires_membership(acme):
    globex = services.tenant_create(slug="globex")
    services.member_add(tenant=globex, username="robot")
    with pytest.raises(InvalidRequest) as exc:
        services.oauth_client_create(tenant=acme, name="ci", username="robot")
    assert "member_add acme robot" in exc.value.message


def test_oauth_client_create_rotate_only_in_its_tenant(acme):
    globex = services.tenant_create(slug="globex")
    for tenant in (acme, globex):
        services.member_add(tenant=tenant, username="robot")
    _, other_id, _ = services.oauth_client_create(tenant=globex, name="ci", username="robot")
    services.oauth_client_create(tenant=acme, name="ci", username="robot")
    client, new_id, secret = services.oauth_client_create(tenant=acme, name="ci", username="robot", rotate=True)
    assert set(client.application.__class__.objects.values_list("client_id", flat=True)) == {other_id, new_id}
    assert client.application.client_secret != secret


# --- service_version_add --------------------------------------------------------------


def test_service_version_add_stores_hashes_and_files(acme, workbook, neuron):
    version = add(acme, workbook, neuron_path=neuron, release_note="r", author="me")
    assert version.workbook_sha256 == hashlib.sha256(workbook.read_bytes()).hexdigest()
    assert version.neuron_sha256 == hashlib.sha256(neuron.read_bytes()).hexdigest()
    assert version.workbook_crc32 == zlib.crc32(workbook.read_bytes())
    assert version.neuron_crc32 == zlib.crc32(neuron.read_bytes())
    assert version.compiler_version  # compiled versions name their compiler
    assert default_storage.exists(version.workbook.name) and default_storage.exists(version.neuron.name)
    assert str(version.version_id) in version.workbook.name and str(version.version_id) in version.neuron.name
    assert len(stored_files()) == 2


def test_service_version_add_uncompiled_has_no_compiler(acme, workbook):
    version = add(acme, workbook)
    assert not version.is_compiled and version.compiler_version == ""


def test_service_version_add_keeps_the_original_workbook_name(acme, tmp_path):
    path = tmp_path / "upload.bin"
    path.write_bytes(demo.make_demo_workbook("s", "1.0.0"))
    version = add(acme, path, workbook_name="My Pricing Model.xlsm")
    assert version.workbook_name == "My Pricing Model.xlsm"
    assert version.workbook.name.endswith(".xlsm")


def test_service_version_add_refuses_workbook_name_with_wrong_extension(acme, workbook):
    with pytest.raises(InvalidRequest) as exc:
        add(acme, workbook, workbook_name="model.xls")
    assert exc.value.code == "INVALID_WORKBOOK"
    assert stored_files() == []


def test_service_version_add_duplicate_conflict_without_orphans(acme, workbook, neuron):
    add(acme, workbook)
    before = stored_files()
    with pytest.raises(Conflict) as exc:
        add(acme, workbook, neuron_path=neuron)
    assert exc.value.code == "VERSION_EXISTS" and exc.value.status_code == 409
    assert stored_files() == before
    assert ServiceVersion.objects.count() == 1  # the transaction is still usable


def test_service_version_add_cleans_up_when_the_row_cannot_be_written(acme, workbook, neuron, monkeypatch):
    def fail(self, *args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(ServiceVersion, "save", fail)
    with pytest.raises(RuntimeError):
        add(acme, workbook, neuron_path=neuron)
    assert stored_files() == []
    assert not Folder.objects.exists() and not Service.objects.exists()


def test_service_version_add_concurrent_duplicate_is_a_conflict(acme, workbook, neuron, monkeypatch):
    """Another process adds the same version between the check and the insert."""
    def lose_the_race(self, *args, **kwargs):
        raise IntegrityError('duplicate key value violates unique constraint "version_unique_semver"')

    monkeypatch.setattr(ServiceVersion, "save", lose_the_race)
    with pytest.raises(Conflict) as exc:
        add(acme, workbook, neuron_path=neuron)
    assert exc.value.code == "VERSION_EXISTS"
    assert stored_files() == []
    assert not Folder.objects.exists()


def test_service_version_add_cleans_up_workbook_when_neuron_cannot_be_stored(
    acme, workbook, neuron, monkeypatch
):
    real_save = default_storage.save

    def save(name, content, max_length=None):
        if name.endswith("neuron.zip"):
            raise OSError("disk full")
        return real_save(name, content, max_length=max_length)

    monkeypatch.setattr(default_storage, "save", save)
    with pytest.raises(OSError):
        add(acme, workbook, neuron_path=neuron)
    assert stored_files() == []
    assert not ServiceVersion.objects.exists()


def test_service_version_add_versions_order_by_semver(acme, workbook):
    for v in ("1.10.0", "1.2.0", "0.9.1"):
        add(acme, workbook, version=v)
    assert [v.version for v in ServiceVersion.objects.all()] == ["0.9.1", "1.2.0", "1.10.0"]


# --- demo_catalog_seed ----------------------------------------------------------------


def test_demo_catalog_seed_counts_and_names(acme):
    result = demo_catalog_seed(tenant=acme, folders=1, services=7, versions=1)
    assert result == {"versions_added": 8 + len(CHAIN), "versions_total": 8 + len(CHAIN)}
    names = set(Service.objects.filter(folder__name="insurance").values_list("name", flat=True))
    assert len(names) == 7  # service names stay unique past the list of base names
    assert "term-life-2" in names


def test_demo_catalog_seed_refuses_negative_counts(acme):
    with pytest.raises(InvalidRequest):
        demo_catalog_seed(tenant=acme, folders=-1)
    assert not ServiceVersion.objects.exists()


def test_demo_catalog_seed_is_per_tenant(acme):
    globex = services.tenant_create(slug="globex")
    demo_catalog_seed(tenant=acme, folders=1, services=1, versions=1)
    assert demo_catalog_seed(tenant=globex, folders=1, services=1, versions=1)["versions_added"] == 2 + len(CHAIN)
    assert ServiceVersion.objects.filter(service__folder__tenant=globex).count() == 2 + len(CHAIN)
