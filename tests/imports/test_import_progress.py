"""An import's progress: the files it stores, two per version it writes."""
import pytest

from exports.models import ImportJob, JobStatus
from tests.imports.test_import_api import import_and_run, modify

pytestmark = pytest.mark.django_db


def test_a_closed_import_has_stored_every_file(source, dest, other_tenant, django_capture_on_commit_callbacks):
    status = import_and_run(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("pricing/quote", None))})

    assert status["status"] == JobStatus.CLOSED
    versions = list(other_tenant.folders.get(name="pricing").services.get(name="quote").versions.all())
    assert status["progress"] == {
        "entries_done": 2 * len(versions), "entries_total": 2 * len(versions),
        "bytes_done": sum(v.workbook_size + v.neuron_size for v in versions),
        "bytes_total": sum(v.workbook_size + v.neuron_size for v in versions),
    }
    assert ImportJob.objects.get(pk=status["id"]).progress == status["progress"]
