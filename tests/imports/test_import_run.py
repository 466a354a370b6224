"""import_run: the import API's checks and all-or-nothing import, from the command line."""
import io
import json

import pytest
from django.core.management import CommandError, call_command

from tenants.models import Folder, ServiceVersion

pytestmark = pytest.mark.django_db


def run(*args):
    out = io.StringIO()
    call_command("import_run", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def package_file(source, other_tenant, tmp_path):
    path = tmp_path / "package.zip"
    path.write_bytes(source)
    Folder.objects.create(tenant=other_tenant, name="claims")
    return path


def test_import_run_dry_run_then_apply(package_file, other_tenant):
    plan = json.loads(run("globex", str(package_file), "-d", "claims/triage=claims/triage-copy", "--dry-run", "--json"))
    assert plan["dry_run"] is True
    assert [r["service_uri_destination"] for r in plan["service_versions"]] == ["claims/triage-copy[0.1.0]"]
    assert not ServiceVersion.objects.filter(service__folder__tenant=other_tenant).exists()

    out = run("globex", str(package_file), "-d", "claims/triage=claims/triage-copy")

    assert "1 version(s) were imported or skipped." in out
    assert ServiceVersion.objects.get(service__folder__tenant=other_tenant).service.name == "triage-copy"


def test_import_run_reports_refusals(package_file, tmp_path):
    with pytest.raises(CommandError, match="FOLDER_NOT_FOUND"):
        run("globex", str(package_file), "-d", "pricing/quote")
    not_zip = tmp_path / "x.zip"
    not_zip.write_text("hello")
    with pytest.raises(CommandError, match="INVALID_IMPORT_ZIP"):
        run("globex", str(not_zip), "-d", "claims/triage")
    with pytest.raises(CommandError, match="Cannot read"):
        run("globex", str(tmp_path / "missing.zip"), "-d", "claims/triage")


def test_import_run_skip_unchanged_makes_a_rerun_write_nothing(package_file, other_tenant):
    run("globex", str(package_file), "-d", "claims/triage")

    out = run("globex", str(package_file), "-d", "claims/triage", "--skip-unchanged")

    assert "claims/triage[0.1.0] -> claims/triage[0.1.0] (unchanged" in out
    assert ServiceVersion.objects.filter(service__folder__tenant=other_tenant).count() == 1
