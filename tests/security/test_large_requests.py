"""Large valid requests resolve their references in sets, on PostgreSQL and SQLite alike (issue 17,
item 3); a database error that is not an outage is a 500 to fix, never a 503."""
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.db import InterfaceError, OperationalError, ProgrammingError

from exports.imports.plan import _existing_services, parse_mappings
from sparkexport.api.errors import exception_handler
from tenants.models import Folder, Service
from tenants.xcall_resolution import CatalogIndex
from tests.exports.api_helpers import assert_error, post_export

ROOT = Path(__file__).resolve().parents[2]
COUNT = 1000


def names(count=COUNT) -> list[str]:
    return [f"claims/s{n}" for n in range(count)]


@pytest.fixture
def half_of_them(tenant):
    folder = Folder.objects.create(tenant=tenant, name="claims")
    Service.objects.bulk_create(Service(folder=folder, name=f"s{n}") for n in range(0, COUNT, 2))
    return tenant


@pytest.mark.django_db
@pytest.mark.usefixtures("no_server_errors")
def test_export_naming_a_thousand_services_answers_which_are_missing(api, half_of_them):
    body = assert_error(post_export(api, {"inputs": {"services": names()}}), 404, "SERVICE_NOT_FOUND")
    assert len(body["details"]["services"]) == COUNT // 2


@pytest.mark.django_db
def test_references_resolve_in_batches_on_postgresql(half_of_them):
    mappings = parse_mappings([{"service_uri_source": name} for name in names(3 * COUNT)])
    assert len(_existing_services(half_of_them, mappings)) == COUNT // 2
    assert len(CatalogIndex.of_tenant(half_of_them, names(3 * COUNT)).by_name) == 0  # services without versions


@pytest.mark.e2e
def test_references_resolve_in_batches_on_sqlite(tmp_path):
    """The `make run` database, in a process of its own: SQLite refuses an expression tree deeper
    than 1,000, which an OR of 1,000 (folder, name) pairs was."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "PYTHONPATH": str(ROOT)}
    run = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*run, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=600)

    done = subprocess.run(
        [sys.executable, str(ROOT / "tests/security/sqlite_large_references.py"), str(COUNT)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "export_status": 404, "export_code": "SERVICE_NOT_FOUND", "existing_services": COUNT // 2,
        "catalog_index_services": 0, "vendor": "sqlite",
    }


# --- 503 only for an outage ---------------------------------------------------------------


def wrapped(django_error, cause):
    error = django_error(str(cause))
    error.__cause__ = cause
    return error


@pytest.mark.parametrize("error", [
    wrapped(OperationalError, sqlite3.OperationalError("Expression tree is too large (maximum depth 1000)")),
    wrapped(OperationalError, sqlite3.OperationalError("too many SQL variables")),
    wrapped(OperationalError, psycopg.errors.QueryCanceled("canceling statement due to statement timeout")),
    wrapped(ProgrammingError, psycopg.errors.UndefinedTable("relation does not exist")),
], ids=["sqlite expression tree", "sqlite variables", "postgres statement timeout", "postgres undefined table"])
def test_a_database_error_that_is_no_outage_is_not_a_503(error):
    assert exception_handler(error, {}) is None  # Django's handler500 answers INTERNAL_ERROR, logged


@pytest.mark.parametrize("error", [
    wrapped(OperationalError, psycopg.OperationalError("connection failed: Connection refused")),
    wrapped(OperationalError, psycopg.errors.AdminShutdown("terminating connection due to administrator command")),
    wrapped(OperationalError, psycopg.errors.TooManyConnections("too many clients already")),
    wrapped(InterfaceError, psycopg.InterfaceError("the connection is closed")),
    wrapped(OperationalError, sqlite3.OperationalError("database is locked")),
    wrapped(OperationalError, sqlite3.OperationalError("unable to open database file")),
], ids=["refused", "admin shutdown", "too many clients", "closed", "sqlite locked", "sqlite cannot open"])
def test_a_database_outage_is_a_503(error):
    response = exception_handler(error, {})
    assert response.status_code == 503
    assert response.data["code"] == "SERVICE_UNAVAILABLE"
