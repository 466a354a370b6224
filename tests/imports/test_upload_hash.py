"""A request's upload is hashed as it arrives (sparkexport/uploads.py): POST import records that
SHA-256 and does not read the file again for it."""
import hashlib

import pytest

from exports.models import ImportJob
from exports.packages import reader
from tests.imports.test_import_api import modify, post_import

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kept_in_memory", [True, False], ids=["in memory", "temporary file"])
def test_the_upload_is_hashed_as_it_arrives_and_not_read_again_for_it(kept_in_memory, source, dest, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * len(source) if kept_in_memory else 0
    whole_file_hashed = []
    check_hashes = reader.check_hashes

    def spy(fh, zf, files, *, whole_file):
        whole_file_hashed.append(whole_file)
        return check_hashes(fh, zf, files, whole_file=whole_file)

    monkeypatch.setattr(reader, "check_hashes", spy)

    response = post_import(dest, django_capture_on_commit_callbacks, source, {"inputs": modify(("claims/triage", None))})

    assert response.status_code == 200, response.json()
    assert ImportJob.objects.get(pk=response.json()["id"]).upload_sha256 == hashlib.sha256(source).hexdigest()
    assert whole_file_hashed == [False]
