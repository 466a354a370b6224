"""The admin's progress bars: in the list and on the page of a job in progress, refreshed from
the admin's progress JSON, which answers only the jobs the supervisor may see."""
import pytest
from django.urls import reverse

from exports.models import JobStatus
from sparkexport.job_progress import ProgressReporter
from tests.admin.conftest import make_import, make_job

pytestmark = pytest.mark.django_db

PROGRESS = reverse("admin:exports_exportjob_progress")


def test_a_job_in_progress_shows_its_bar_in_the_list_and_on_its_page(admin_client_a, tenant):
    job = make_job(tenant, status=JobStatus.IN_PROGRESS)
    ProgressReporter(job.pk, entries_total=10, bytes_total=4_000_000, interval=0).advance(entries=4, bytes_=1_000_000)
    for url in (reverse("admin:exports_exportjob_changelist"), reverse("admin:exports_exportjob_change", args=[job.pk])):
        page = admin_client_a.get(url).content.decode()
        assert f'data-job="{job.pk}"' in page and 'data-active="1"' in page
        assert 'title="25 % · 4/10 entries · 1.0/4.0 MB"' in page  # in words on hover (the list is narrow)
        assert "exports/job_progress.js" in page
    detail = admin_client_a.get(reverse("admin:exports_exportjob_change", args=[job.pk])).content.decode()
    assert "<small>25 % · 4/10 entries · 1.0/4.0 MB</small>" in detail


def test_a_closed_job_shows_what_it_did_and_no_refresh(admin_client_a, tenant):
    job = make_job(tenant, progress={"entries_done": 3, "entries_total": 3, "bytes_done": 2_000_000, "bytes_total": 2_000_000})
    page = admin_client_a.get(reverse("admin:exports_exportjob_change", args=[job.pk])).content.decode()
    assert "100 % · 3/3 entries · 2.0/2.0 MB" in page and 'data-active="0"' in page


def test_the_progress_json_answers_only_jobs_the_supervisor_may_see(admin_client_a, admin_client_b, tenant, other_tenant):
    mine = make_job(tenant, status=JobStatus.IN_PROGRESS)
    theirs = make_job(other_tenant, status=JobStatus.IN_PROGRESS)
    ProgressReporter(mine.pk, entries_total=2, bytes_total=100, interval=0).advance(entries=1, bytes_=50)
    answer = admin_client_a.get(PROGRESS, {"id": [mine.pk, theirs.pk, "not-a-uuid"]}).json()
    assert list(answer) == [str(mine.pk)]
    assert answer[str(mine.pk)] == {
        "active": True, "words": "50 % · 1/2 entries · 0.0/0.0 MB",
        "progress": {"entries_done": 1, "entries_total": 2, "bytes_done": 50, "bytes_total": 100},
    }
    assert admin_client_b.get(PROGRESS, {"id": [mine.pk]}).json() == {}


def test_imports_have_their_progress_json_too(admin_client_a, tenant):
    job = make_import(tenant, status=JobStatus.IN_PROGRESS)
    answer = admin_client_a.get(reverse("admin:exports_importjob_progress"), {"id": [job.pk]}).json()
    assert answer[str(job.pk)]["words"] == "starting"
