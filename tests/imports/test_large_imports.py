"""An import into 1,000 destinations plans in a few flat queries (issue 17, item 3; the SQLite
side is tests/security/test_large_requests.py)."""
import pytest

from tests.imports.test_import_api import modify, post_import

COUNT = 1000


@pytest.mark.django_db
@pytest.mark.usefixtures("no_server_errors")
def test_dry_run_into_a_thousand_destinations_answers_its_plan(source, dest, django_capture_on_commit_callbacks):
    entity = {"inputs": modify(*[("claims/triage", f"claims/copy-{n}") for n in range(COUNT)]), "dry_run": True}

    response = post_import(dest, django_capture_on_commit_callbacks, source, entity)

    assert response.status_code == 200, response.json()
    assert len(response.json()["outputs"]["services"]) == COUNT
