"""The management commands: thin interfaces to the tenant services, with --help and --json."""
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from oauth2_provider.models import Application

from tenants import artifacts, demo
from tenants.models import MB, ApiKey, Folder, Group, Membership, OAuthClient, Service, ServiceVersion, Tenant
from tenants.selectors import api_key_get_by_secret
from tests.tenants.conftest import stored_files

pytestmark = pytest.mark.django_db

COMMANDS = {
    "tenant_create": ["--export-job-limit", "--max-package-mb", "--job-timeout-minutes"],
    "member_add": ["--supervisor", "--password"],
    "apikey_create": ["--name", "--permission", "--supervisor", "--rotate"],
    "apikey_revoke": ["--name", "--prefix"],
    "oauth_client_create": ["--name", "--user", "--rotate"],
    "service_version_add": ["--workbook", "--neuron", "--release-note"],
    "demo_seed": ["--folders", "--services", "--versions", "--large-mb"],
}


def run(name, *args):
    """Run a command; return (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_json(name, *args) -> dict:
    out, _ = run(name, *args, "--json")
    data = json.loads(out)  # exactly one JSON document, nothing else on stdout
    assert isinstance(data, dict)
    assert out.count("\n") == 1
    return data


@pytest.fixture
def acme(db):
    return Tenant.objects.create(slug="acme")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- help and --json on every command ------------------------------------------------


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_for_each_option(name):
    command = load_command_class("tenants", name)
    parser = command.create_parser("manage.py", name)
    text = parser.format_help()
    assert command.help.strip() and command.help.strip() in " ".join(text.split())
    for option in [*COMMANDS[name], "--json"]:
        assert option in text
        action = next(a for a in parser._actions if option in a.option_strings)
        assert action.help, f"{name} {option} has no help text"


def test_help_runs_from_the_command_line():
    result = subprocess.run(
        [sys.executable, "manage.py", "service_version_add", "--help"],
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60, env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stderr
    assert "--workbook" in result.stdout and "--neuron" in result.stdout


# --- tenant_create --------------------------------------------------------------------


def test_tenant_create_defaults():
    out, _ = run("tenant_create", "acme")
    tenant = Tenant.objects.get(slug="acme")
    assert tenant.export_api_job_limit == 1
    assert tenant.max_package_bytes == 200 * 1024 * 1024
    assert tenant.job_timeout_seconds == 900
    assert "acme" in out


def test_tenant_create_with_options_and_json():
    data = run_json(
        "tenant_create", "globex", "--export-job-limit", "3", "--max-package-mb", "50",
        "--job-timeout-minutes", "30",
    )
    tenant = Tenant.objects.get(slug="globex")
    assert (tenant.export_api_job_limit, tenant.max_package_bytes, tenant.job_timeout_seconds) == (
        3, 50 * MB, 1800,
    )
    assert data == {
        "tenant": "globex",
        "export_api_job_limit": 3,
        "max_package_bytes": 50 * MB,
        "job_timeout_seconds": 1800,
    }


@pytest.mark.parametrize("slug", ["Bad_Slug", "-x", "a" * 64, "", "acme\n", "ac me", "acmé"])
def test_tenant_create_refuses_invalid_slug(slug):
    with pytest.raises(CommandError) as exc:
        run("tenant_create", "--", slug)
    assert "INVALID_REQUEST" in str(exc.value)
    assert "slug" in str(exc.value) and "lowercase" in str(exc.value)
    assert not Tenant.objects.exists()


def test_tenant_create_accepts_63_characters():
    run("tenant_create", "a" * 63)
    assert Tenant.objects.filter(slug="a" * 63).exists()


def test_tenant_create_refuses_duplicate(acme):
    with pytest.raises(CommandError) as exc:
        run("tenant_create", "acme", "--export-job-limit", "5")
    assert "TENANT_EXISTS" in str(exc.value) and "already exists" in str(exc.value)
    assert Tenant.objects.get(slug="acme").export_api_job_limit == 1  # the transaction survived


@pytest.mark.parametrize("option", ["--export-job-limit", "--max-package-mb", "--job-timeout-minutes"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_tenant_create_refuses_non_positive_limits(option, value):
    with pytest.raises(CommandError) as exc:
        run("tenant_create", "acme", f"{option}={value}")
    assert "at least 1" in str(exc.value)
    assert not Tenant.objects.exists()


@pytest.mark.parametrize("option", ["--export-job-limit", "--max-package-mb", "--job-timeout-minutes"])
def test_tenant_create_refuses_values_too_large_for_their_columns(option):
    with pytest.raises(CommandError) as exc:
        run("tenant_create", "acme", option, str(10**12))
    assert "at most" in str(exc.value)
    assert not Tenant.objects.exists()


def test_tenant_create_accepts_the_largest_values():
    run("tenant_create", "acme", "--export-job-limit", "1000000", "--max-package-mb", "1000000",
        "--job-timeout-minutes", "1000000")
    tenant = Tenant.objects.get()
    assert tenant.max_package_bytes == 10**6 * MB and tenant.job_timeout_seconds == 6 * 10**7


def test_tenant_create_refuses_non_integer_limit():
    with pytest.raises(CommandError):
        run("tenant_create", "acme", "--export-job-limit", "two")
    assert not Tenant.objects.exists()


# --- member_add -----------------------------------------------------------------------


def test_member_add_creates_user_as_user_pf(acme):
    out, _ = run("member_add", "acme", "alice")
    user = get_user_model().objects.get(username="alice")
    membership = Membership.objects.get(tenant=acme, user=user)
    assert membership.group == Group.USER
    assert not user.is_staff
    assert not user.has_usable_password()
    assert "alice" in out and "user:pf" in out


def test_member_add_supervisor_with_password_and_json(acme):
    data = run_json("member_add", "acme", "boss", "--supervisor", "--password", "s3cret-pass")
    user = get_user_model().objects.get(username="boss")
    assert Membership.objects.get(tenant=acme, user=user).group == Group.SUPERVISOR
    assert user.is_staff
    assert user.check_password("s3cret-pass")
    assert data == {"tenant": "acme", "username": "boss", "group": "supervisor:pf"}


def test_member_add_reuses_existing_user(acme):
    user = get_user_model().objects.create_user(username="carol", password="old-pass")
    Tenant.objects.create(slug="globex")
    run("member_add", "acme", "carol")
    run("member_add", "globex", "carol", "--supervisor")
    assert get_user_model().objects.filter(username="carol").count() == 1
    user.refresh_from_db()
    assert user.check_password("old-pass")  # not touched without --password
    assert set(user.tenant_memberships.values_list("tenant__slug", "group")) == {
        ("acme", "user:pf"), ("globex", "supervisor:pf"),
    }


def test_member_add_again_changes_group_without_duplicating(acme):
    run("member_add", "acme", "dave")
    run("member_add", "acme", "dave", "--supervisor")
    assert Membership.objects.filter(tenant=acme).count() == 1
    assert Membership.objects.get(tenant=acme).group == Group.SUPERVISOR


def test_member_add_unknown_tenant():
    with pytest.raises(CommandError) as exc:
        run("member_add", "nope", "alice")
    assert "nope" in str(exc.value) and "tenant_create" in str(exc.value)
    assert not get_user_model().objects.exists()


# --- apikey_create --------------------------------------------------------------------


def test_apikey_create_prints_key_once_and_stores_only_a_hash(acme):
    out, _ = run("apikey_create", "acme", "--name", "ci")
    key = next(line.strip() for line in out.splitlines() if line.startswith("  "))
    prefix, _, secret = key.partition(".")
    assert prefix and len(secret) >= 32
    api_key = ApiKey.objects.get(tenant=acme, name="ci")
    for field in ApiKey._meta.concrete_fields:
        value = str(field.value_from_object(api_key))
        assert secret not in value and key not in value, field.name
    assert api_key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert api_key_get_by_secret(key) == api_key
    assert api_key.permissions == ["Spark.Exports.json", "Spark.Imports.json"]
    assert not api_key.is_supervisor


def test_apikey_create_wrong_secret_does_not_authenticate(acme):
    key = run_json("apikey_create", "acme", "--name", "ci")["api_key"]
    prefix, _, secret = key.partition(".")
    assert api_key_get_by_secret(f"{prefix}.{secret[:-1]}x") is None
    assert api_key_get_by_secret(prefix) is None
    assert api_key_get_by_secret(f".{secret}") is None


def test_apikey_create_explicit_permissions_supervisor_json(acme):
    data = run_json(
        "apikey_create", "acme", "--name", "ops", "--permission", "Spark.Exports.json",
        "--permission", "Spark.AllEncompassingProxy.json", "--supervisor",
    )
    api_key = api_key_get_by_secret(data["api_key"])
    assert api_key is not None and api_key.tenant == acme
    assert api_key.permissions == ["Spark.Exports.json", "Spark.AllEncompassingProxy.json"]
    assert api_key.is_supervisor
    assert data["permissions"] == api_key.permissions
    assert data["tenant"] == "acme" and data["name"] == "ops"


def test_apikey_create_refuses_unknown_permission(acme):
    with pytest.raises((CommandError, SystemExit)):
        run("apikey_create", "acme", "--name", "ci", "--permission", "Spark.Everything")
    assert not ApiKey.objects.exists()


def test_apikey_create_requires_name(acme):
    with pytest.raises((CommandError, SystemExit)):
        run("apikey_create", "acme")


def test_apikey_create_unknown_tenant():
    with pytest.raises(CommandError) as exc:
        run("apikey_create", "nope", "--name", "ci")
    assert "tenant_create" in str(exc.value)


def test_apikey_create_rotate_revokes_previous_keys_of_that_name(acme):
    other_tenant = Tenant.objects.create(slug="globex")
    old = [run_json("apikey_create", "acme", "--name", "ci")["api_key"] for _ in range(2)]
    other_name = run_json("apikey_create", "acme", "--name", "other")["api_key"]
    same_name_other_tenant = run_json("apikey_create", "globex", "--name", "ci")["api_key"]
    assert all(api_key_get_by_secret(key) for key in old)

    new = run_json("apikey_create", "acme", "--name", "ci", "--rotate")["api_key"]

    assert [api_key_get_by_secret(key) for key in old] == [None, None]
    assert api_key_get_by_secret(new).name == "ci"
    assert api_key_get_by_secret(other_name) is not None
    assert api_key_get_by_secret(same_name_other_tenant).tenant == other_tenant
    assert ApiKey.objects.filter(tenant=acme, name="ci", revoked_at__isnull=False).count() == 2


def test_apikey_create_without_rotate_keeps_previous_keys(acme):
    first = run_json("apikey_create", "acme", "--name", "ci")["api_key"]
    second = run_json("apikey_create", "acme", "--name", "ci")["api_key"]
    assert first != second
    assert api_key_get_by_secret(first) and api_key_get_by_secret(second)


# --- apikey_revoke --------------------------------------------------------------------


def test_apikey_revoke_by_name_revokes_every_live_key_of_that_name_only(acme):
    Tenant.objects.create(slug="globex")
    ci = [run_json("apikey_create", "acme", "--name", "ci")["api_key"] for _ in range(2)]
    other = run_json("apikey_create", "acme", "--name", "other")["api_key"]
    elsewhere = run_json("apikey_create", "globex", "--name", "ci")["api_key"]
    data = run_json("apikey_revoke", "acme", "--name", "ci")
    assert sorted(item["prefix"] for item in data["revoked"]) == sorted(key.partition(".")[0] for key in ci)
    assert [api_key_get_by_secret(key) for key in ci] == [None, None]
    assert api_key_get_by_secret(other) and api_key_get_by_secret(elsewhere)


def test_apikey_revoke_by_prefix_revokes_one_key(acme):
    first, second = (run_json("apikey_create", "acme", "--name", "ci")["api_key"] for _ in range(2))
    out, _ = run("apikey_revoke", "acme", "--prefix", first.partition(".")[0])
    assert "Revoked 1 API key(s)" in out
    assert api_key_get_by_secret(first) is None and api_key_get_by_secret(second)


@pytest.mark.parametrize("args", [[], ["--name", "ci", "--prefix", "x"], ["--name", "nobody"]])
def test_apikey_revoke_says_what_is_wrong(acme, args):
    run_json("apikey_create", "acme", "--name", "ci")
    with pytest.raises(CommandError):
        run("apikey_revoke", "acme", *args)
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 1


# --- oauth_client_create --------------------------------------------------------------


@pytest.fixture
def member(acme):
    run("member_add", "acme", "robot")
    return get_user_model().objects.get(username="robot")


def token_url(slug):
    return f"/auth/realms/{slug}/protocol/openid-connect/token"


def test_oauth_client_create_prints_credentials_and_hashes_secret(acme, member, client):
    out, _ = run("oauth_client_create", "acme", "--name", "ci", "--user", "robot")
    client_id = out.split("client_id:")[1].split()[0]
    client_secret = out.split("client_secret:")[1].split()[0]
    application = Application.objects.get(client_id=client_id)
    assert application.client_secret != client_secret
    assert client_secret not in application.client_secret
    assert application.user == member
    assert OAuthClient.objects.get(application=application).tenant == acme

    response = client.post(token_url("acme"), {
        "client_id": client_id, "client_secret": client_secret, "grant_type": "client_credentials",
    })
    assert response.status_code == 200, response.content
    assert response.json()["access_token"]


def test_oauth_client_create_json_and_wrong_secret_or_realm(acme, member, client):
    Tenant.objects.create(slug="globex")
    data = run_json("oauth_client_create", "acme", "--name", "ci", "--user", "robot")
    assert set(data) >= {"tenant", "client_id", "client_secret"}
    wrong = client.post(token_url("acme"), {
        "client_id": data["client_id"], "client_secret": "nope", "grant_type": "client_credentials",
    })
    assert wrong.status_code in (400, 401)
    other_realm = client.post(token_url("globex"), {
        "client_id": data["client_id"], "client_secret": data["client_secret"],
        "grant_type": "client_credentials",
    })
    assert other_realm.status_code == 401


def test_oauth_client_create_refuses_non_member(acme):
    get_user_model().objects.create_user(username="stranger")
    with pytest.raises(CommandError) as exc:
        run("oauth_client_create", "acme", "--name", "ci", "--user", "stranger")
    assert "member_add" in str(exc.value) and "stranger" in str(exc.value)
    assert not Application.objects.exists()


def test_oauth_client_create_unknown_tenant():
    with pytest.raises(CommandError) as exc:
        run("oauth_client_create", "nope", "--name", "ci", "--user", "robot")
    assert "tenant_create" in str(exc.value)


def test_oauth_client_create_rotate_replaces_clients_of_that_name(acme, member, client):
    old = run_json("oauth_client_create", "acme", "--name", "ci", "--user", "robot")
    kept = run_json("oauth_client_create", "acme", "--name", "other", "--user", "robot")
    new = run_json("oauth_client_create", "acme", "--name", "ci", "--user", "robot", "--rotate")
    assert not Application.objects.filter(client_id=old["client_id"]).exists()
    assert set(Application.objects.values_list("client_id", flat=True)) == {
        kept["client_id"], new["client_id"],
    }
    response = client.post(token_url("acme"), {
        "client_id": old["client_id"], "client_secret": old["client_secret"],
        "grant_type": "client_credentials",
    })
    assert response.status_code == 401


# --- service_version_add --------------------------------------------------------------


def test_service_version_add_compiled(acme, workbook, neuron):
    out, _ = run(
        "service_version_add", "acme", "insurance", "term-life", "1.2.3",
        "--workbook", str(workbook), "--neuron", str(neuron), "--release-note", "First release",
    )
    version = ServiceVersion.objects.get()
    assert version.service.folder.tenant == acme
    assert (version.service.folder.name, version.service.name, version.version) == (
        "insurance", "term-life", "1.2.3",
    )
    assert version.semver == (1, 2, 3)
    assert version.is_compiled
    assert version.release_note == "First release"
    assert version.workbook_name == "term-life.xlsx"
    assert version.workbook_size == workbook.stat().st_size
    assert version.workbook_sha256 == sha256(workbook)
    assert version.neuron_size == neuron.stat().st_size
    assert version.neuron_sha256 == sha256(neuron)
    assert hashlib.sha256(version.workbook.read()).hexdigest() == sha256(workbook)
    assert hashlib.sha256(version.neuron.read()).hexdigest() == sha256(neuron)
    assert "compiled" in out and str(version.version_id) in out


def test_service_version_add_without_neuron_is_not_compiled_json(acme, workbook):
    data = run_json(
        "service_version_add", "acme", "insurance", "term-life", "1.0.0", "--workbook", str(workbook),
    )
    version = ServiceVersion.objects.get()
    assert not version.is_compiled
    assert version.neuron_size is None and version.neuron_sha256 == ""
    assert len(stored_files()) == 1
    assert data == {
        "service_uri": "insurance/term-life[1.0.0]",
        "service_id": str(version.service.service_id),
        "version_id": str(version.version_id),
        "compiled": False,
        "workbook_sha256": sha256(workbook),
        "neuron_sha256": None,
    }


def test_service_version_add_reuses_folder_and_service(acme, workbook, neuron):
    for v in ("1.0.0", "1.1.0"):
        run("service_version_add", "acme", "insurance", "term-life", v, "--workbook", str(workbook))
    run("service_version_add", "acme", "insurance", "motor", "1.0.0", "--workbook", str(workbook))
    assert Folder.objects.count() == 1
    assert Service.objects.count() == 2
    assert ServiceVersion.objects.count() == 3
    assert len(stored_files()) == 3


def _text_xlsx(tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_text("not a workbook")
    return path


def _xls(tmp_path):
    path = tmp_path / "book.xls"
    path.write_bytes(demo.make_demo_workbook("s", "1.0.0"))
    return path


def _zip(tmp_path, members):
    path = tmp_path / "bad-neuron.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _neuron_not_zip(tmp_path):
    path = tmp_path / "neuron.zip"
    path.write_bytes(b"\0asm not a zip")
    return path


def _neuron_without_wasm(tmp_path):
    return _zip(tmp_path, {"service.js": "// loader"})


def _neuron_invalid_wasm(tmp_path):
    return _zip(tmp_path, {"service.wasm": b"\0asm\x01\0\0\0garbage", "service.js": "//"})


@pytest.mark.parametrize("make_workbook,make_neuron,code", [
    (_text_xlsx, None, "INVALID_WORKBOOK"),
    (_xls, None, "INVALID_WORKBOOK"),
    (None, _neuron_not_zip, "INVALID_NEURON_PACKAGE"),
    (None, _neuron_without_wasm, "INVALID_NEURON_PACKAGE"),
    (None, _neuron_invalid_wasm, "INVALID_NEURON_PACKAGE"),
])
def test_service_version_add_refuses_invalid_artifacts(
    acme, tmp_path, workbook, make_workbook, make_neuron, code
):
    args = ["acme", "insurance", "term-life", "1.0.0"]
    args += ["--workbook", str(make_workbook(tmp_path) if make_workbook else workbook)]
    if make_neuron:
        args += ["--neuron", str(make_neuron(tmp_path))]
    with pytest.raises(CommandError) as exc:
        run("service_version_add", *args)
    assert code in str(exc.value)
    assert not ServiceVersion.objects.exists()
    assert not Folder.objects.exists() and not Service.objects.exists()
    assert stored_files() == []


def test_service_version_add_missing_files(acme, tmp_path, workbook):
    with pytest.raises(CommandError) as exc:
        run("service_version_add", "acme", "f", "s", "1.0.0", "--workbook", str(tmp_path / "none.xlsx"))
    assert "INVALID_WORKBOOK" in str(exc.value)
    with pytest.raises(CommandError) as exc:
        run("service_version_add", "acme", "f", "s", "1.0.0", "--workbook", str(workbook),
            "--neuron", str(tmp_path / "none.zip"))
    assert "INVALID_NEURON_PACKAGE" in str(exc.value)
    assert not ServiceVersion.objects.exists() and stored_files() == []


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "1.0.0-beta", "01.0.0", "1.0.0\n", "1.1٢.0", "1.0.0.0", ""])
def test_service_version_add_refuses_bad_semver(acme, workbook, version):
    with pytest.raises(CommandError) as exc:
        run("service_version_add", "acme", "insurance", "term-life", version, "--workbook", str(workbook))
    assert "MAJOR.MINOR.PATCH" in str(exc.value)
    assert not ServiceVersion.objects.exists() and stored_files() == []


@pytest.mark.parametrize("folder", ["a/b", "..", "x[1]", "", " x", "a\\b", "a..b", "a" * 101])
def test_service_version_add_refuses_bad_folder_and_service_names(acme, workbook, folder):
    with pytest.raises(CommandError) as exc:
        run("service_version_add", "acme", folder, "term-life", "1.0.0", "--workbook", str(workbook))
    assert "Invalid folder name" in str(exc.value)
    with pytest.raises(CommandError) as exc:
        run("service_version_add", "acme", "insurance", folder, "1.0.0", "--workbook", str(workbook))
    assert "Invalid service name" in str(exc.value)
    assert not Folder.objects.exists() and stored_files() == []


def test_service_version_add_refuses_duplicate_version_without_orphans(acme, workbook, neuron):
    args = ["acme", "insurance", "term-life", "1.0.0", "--workbook", str(workbook)]
    run("service_version_add", *args)
    before = stored_files()
    with pytest.raises(CommandError) as exc:
        run("service_version_add", *args, "--neuron", str(neuron))
    assert "VERSION_EXISTS" in str(exc.value) and "1.0.0" in str(exc.value)
    assert ServiceVersion.objects.count() == 1
    assert stored_files() == before
    assert not ServiceVersion.objects.get().is_compiled


def test_service_version_add_same_version_in_another_tenant(acme, workbook):
    Tenant.objects.create(slug="globex")
    for slug in ("acme", "globex"):
        run("service_version_add", slug, "insurance", "term-life", "1.0.0", "--workbook", str(workbook))
    assert ServiceVersion.objects.count() == 2


def test_service_version_add_unknown_tenant(workbook):
    with pytest.raises(CommandError) as exc:
        run("service_version_add", "nope", "f", "s", "1.0.0", "--workbook", str(workbook))
    assert "tenant_create" in str(exc.value)
    assert stored_files() == []


# --- demo_seed ------------------------------------------------------------------------


def test_demo_seed_creates_tenant_and_real_versions(tmp_path):
    data = run_json("demo_seed", "demo", "--folders", "2", "--services", "2", "--versions", "2")
    tenant = Tenant.objects.get(slug="demo")
    versions = list(ServiceVersion.objects.filter(service__folder__tenant=tenant))
    total = 2 * 2 * 2 + 1 + len(demo.CHAIN)
    assert data == {"tenant": "demo", "tenant_created": True, "versions_added": total, "versions_total": total}
    assert len(versions) == total
    compiled = [v for v in versions if v.is_compiled]
    drafts = [v for v in versions if not v.is_compiled]
    assert len(compiled) == total - 1 and len(drafts) == 1
    assert Folder.objects.filter(tenant=tenant).count() == 4  # two demo folders, drafts, the Xcall chain
    assert Service.objects.filter(folder__tenant=tenant).count() == 5 + 3
    assert len({v.workbook_sha256 for v in versions}) == len(versions)
    assert len({v.neuron_sha256 for v in compiled}) == len(compiled)
    for v in versions:
        path = Path(v.workbook.path)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == v.workbook_sha256
        artifacts.validate_workbook(path, v.workbook_name)
        if v.is_compiled:
            assert hashlib.sha256(Path(v.neuron.path).read_bytes()).hexdigest() == v.neuron_sha256
            assert artifacts.validate_neuron_package(v.neuron.path)


def test_demo_seed_is_idempotent():
    run("demo_seed", "demo", "--folders", "1", "--services", "2", "--versions", "2")
    rows, files = ServiceVersion.objects.count(), stored_files()
    data = run_json("demo_seed", "demo", "--folders", "1", "--services", "2", "--versions", "2")
    assert data["versions_added"] == 0 and data["tenant_created"] is False
    assert data["versions_total"] == rows == 5 + len(demo.CHAIN)
    assert ServiceVersion.objects.count() == rows
    assert stored_files() == files


def test_demo_seed_existing_tenant_and_growth(acme):
    out, _ = run("demo_seed", "acme", "--folders", "1", "--services", "1", "--versions", "1")
    assert "acme" in out
    assert Tenant.objects.count() == 1
    data = run_json("demo_seed", "acme", "--folders", "1", "--services", "1", "--versions", "3")
    assert data["versions_added"] == 2
    assert ServiceVersion.objects.count() == 4 + len(demo.CHAIN)
    out, _ = run("demo_seed", "acme", "--folders", "1", "--services", "1", "--versions", "3")
    assert f"added 0 demo version(s); {4 + len(demo.CHAIN)} were there already" in out


def test_demo_seed_large_folder_holds_valid_packages_of_the_size_asked(acme):
    data = run_json("demo_seed", "acme", "--folders", "0", "--large-mb", "30")
    assert data["versions_added"] == 3 + len(demo.CHAIN)  # the draft, the chain, two large versions of about 15 MB
    large = ServiceVersion.objects.filter(service__folder__name="large", service__name="archive")
    assert sorted(v.version for v in large) == ["1.0.0", "1.1.0"]
    assert all(15 * 1024 * 1024 <= v.neuron_size < 16 * 1024 * 1024 for v in large)
    assert all(v.is_compiled for v in large)  # validated by service_version_add, as any upload


def test_demo_seed_refuses_invalid_slug():
    with pytest.raises(CommandError) as exc:
        run("demo_seed", "Bad_Slug", "--folders", "1", "--services", "1", "--versions", "1")
    assert "slug" in str(exc.value)
    assert not Tenant.objects.exists()


@pytest.mark.parametrize("option", ["--folders", "--services", "--versions", "--large-mb"])
def test_demo_seed_refuses_negative_counts(option):
    with pytest.raises(CommandError):
        run("demo_seed", "demo", option, "-1")
    assert not Tenant.objects.exists() and stored_files() == []


def test_demo_seed_zero_counts_seed_only_the_draft_and_the_xcall_chain():
    data = run_json("demo_seed", "demo", "--folders", "0")
    assert data["versions_added"] == 1 + len(demo.CHAIN)
    assert [v.is_compiled for v in ServiceVersion.objects.filter(service__folder__name="drafts")] == [False]
    assert ServiceVersion.objects.filter(service__folder__name="motor").count() == len(demo.CHAIN)
