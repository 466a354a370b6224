"""Job history and job detail: columns, filters, search, query counts and the actions."""
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from exports.models import ExportJob, JobStatus
from tenants.services import member_add
from tests.admin.conftest import logged_in, make_job, store_package
from tests.query_counts import assert_queries

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:exports_exportjob_changelist")


def job_url(job, action=None) -> str:
    if action:
        return reverse(f"admin:exports_exportjob_{action}", args=[job.pk])
    return reverse("admin:exports_exportjob_change", args=[job.pk])


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def changelist(client):
    response = assert_queries("admin export job list", lambda: client.get(CHANGELIST))
    assert response.status_code == 200


def test_changelist_query_count_does_not_grow_with_jobs(admin_client_a, tenant, version_a):
    for index in range(3):
        make_job(tenant, versions=[version_a], created_by=f"user{index % 2}", correlation_id=str(index))
    changelist(admin_client_a)
    for index in range(27):
        make_job(tenant, versions=[version_a], created_by=f"user{index % 2}", correlation_id=str(index))
    changelist(admin_client_a)


def test_changelist_shows_columns_newest_first(admin_client_a, tenant):
    old = make_job(tenant, created_ago=timedelta(days=2), source_system="ci", correlation_id="corr-old")
    store_package(old)
    new = make_job(tenant, status=JobStatus.CLOSED_BY_TIMEOUT, created_ago=timedelta(minutes=1), correlation_id="corr-new")
    response = admin_client_a.get(CHANGELIST)
    assert list(response.context["cl"].result_list) == [new, old]
    html = response.content.decode()
    for text in ("corr-old", "corr-new", "ci-key", "closed by timeout", "closed", "2,000 ms", "22\xa0bytes"):
        assert text in html
    assert f"{timezone.localtime(old.created_at):%Y-%m-%d %H:%M}" in html


def test_changelist_columns_fit_a_laptop_screen(admin_client_a, admin_client, tenant):
    """Finished, hash and source system are on the detail page; the tenant column only for
    users who see several tenants."""
    make_job(tenant)
    columns = admin_client_a.get(CHANGELIST).context["cl"].list_display
    assert columns == ["action_checkbox", "short_id", "status_badge", "created_by", "correlation", "created", "process_time", "size"]
    assert "tenant" in admin_client.get(CHANGELIST).context["cl"].list_display  # a superuser sees every tenant


def test_a_supervisor_of_two_tenants_sees_the_tenant_column(supervisor, tenant, other_tenant):
    member_add(tenant=other_tenant, username=supervisor.username, supervisor=True)
    make_job(tenant)
    make_job(other_tenant)
    response = logged_in(supervisor).get(CHANGELIST)
    assert "tenant" in response.context["cl"].list_display
    assert "globex" in response.content.decode() and "acme" in response.content.decode()


def test_filter_by_status_and_search_by_job_id_and_correlation_id(admin_client_a, tenant):
    running = make_job(tenant, status=JobStatus.IN_PROGRESS, correlation_id="order-42")
    closed = make_job(tenant, correlation_id=str(running.pk))

    by_status = admin_client_a.get(CHANGELIST, {"status__exact": "in_progress"})
    assert list(by_status.context["cl"].result_list) == [running]

    by_id = admin_client_a.get(CHANGELIST, {"q": str(closed.pk)})
    assert list(by_id.context["cl"].result_list) == [closed]
    # A UUID also matches jobs whose correlation id is that UUID.
    by_uuid = admin_client_a.get(CHANGELIST, {"q": str(running.pk)})
    assert set(by_uuid.context["cl"].result_list) == {running, closed}

    by_correlation = admin_client_a.get(CHANGELIST, {"q": "order-4"})
    assert list(by_correlation.context["cl"].result_list) == [running]


def test_detail_shows_inputs_versions_errors_and_a_working_download_link(admin_client_a, admin_client_b, tenant, version_a, client):
    job = make_job(tenant, versions=[version_a], correlation_id="c-1", zip_process_time_ms=1234, estimated_size=3 * 1024 * 1024)
    store_package(job, b"zip bytes")
    failed = make_job(tenant, status=JobStatus.FAILED)
    failed.errors = [{"code": "WORKER_LOST", "message": "The worker died."}]
    failed.save()

    html = admin_client_a.get(job_url(job)).content.decode()
    assert "<td>folders</td><td>pricing</td>" in html and "&quot;" not in html  # a table, not JSON
    assert "quote" in html and "1.0.0" in html and str(version_a.version_id) in html
    assert 'id="job-rerun"' in html and 'id="job-delete-package"' in html
    assert 'id="job-cancel"' not in html  # finished
    assert 'name="_save"' not in html  # read-only
    for label, value in (("Packaging time", "1,234 ms"), ("Estimated size", "3.0\xa0MB"), ("Size", "9\xa0bytes"), ("SHA-256", job.file_hash)):
        assert re.search(rf"<label>{label}:</label>\s*<div class=\"readonly\">(<code>)?{value}", html), label
    assert "Zip process time ms" not in html and "File hash" not in html
    fresh_link = admin_client_a.get(response_link(html, f"/admin/exports/exportjob/{job.pk}/download/"))
    assert fresh_link.status_code == 302
    assert fresh_link["Location"].startswith(f"/{tenant.slug}/api/v4/export/{job.pk}/file/package.zip?token=session:")
    download = client.get(fresh_link["Location"])  # works without the admin session
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"zip bytes"
    assert admin_client_b.get(job_url(job, "download")).status_code == 404  # another tenant's supervisor

    assert "<td>WORKER_LOST</td><td>The worker died.</td>" in admin_client_a.get(job_url(failed)).content.decode()


def response_link(html: str, prefix: str) -> str:
    start = html.index(prefix)
    return html[start : html.index('"', start)].replace("&amp;", "&")


def test_jobs_cannot_be_added_edited_or_deleted(admin_client_a, tenant):
    job = make_job(tenant)
    assert admin_client_a.get(reverse("admin:exports_exportjob_add")).status_code == 403
    assert admin_client_a.post(job_url(job), {"status": "failed"}).status_code == 403
    assert admin_client_a.get(reverse("admin:exports_exportjob_delete", args=[job.pk])).status_code == 403


def test_cancel_button_cancels_a_running_job(admin_client_a, tenant):
    job = make_job(tenant, status=JobStatus.IN_PROGRESS)
    assert 'id="job-cancel"' in admin_client_a.get(job_url(job)).content.decode()

    response = admin_client_a.post(job_url(job, "cancel"))
    assert response.status_code == 302 and response["Location"] == job_url(job)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.finished_at is not None
    assert f"Job {job.pk} cancelled." in message_texts(response)


def test_cancel_of_a_finished_job_says_why_not(admin_client_a, tenant):
    job = make_job(tenant, status=JobStatus.CLOSED)
    response = admin_client_a.post(job_url(job, "cancel"))
    job.refresh_from_db()
    assert job.status == JobStatus.CLOSED
    assert any("already finished with status 'closed'" in text for text in message_texts(response))


def test_cancel_needs_post(admin_client_a, tenant):
    job = make_job(tenant, status=JobStatus.IN_PROGRESS)
    assert admin_client_a.get(job_url(job, "cancel")).status_code == 405
    job.refresh_from_db()
    assert job.status == JobStatus.IN_PROGRESS


def test_cancel_action_on_the_changelist(admin_client_a, tenant):
    running = [make_job(tenant, status=status) for status in (JobStatus.CREATED, JobStatus.IN_PROGRESS)]
    closed = make_job(tenant)
    response = admin_client_a.post(
        CHANGELIST, {"action": "cancel_jobs", "_selected_action": [str(job.pk) for job in (*running, closed)]}
    )
    assert response.status_code == 302
    statuses = dict(ExportJob.objects.values_list("pk", "status"))
    assert [statuses[job.pk] for job in running] == [JobStatus.CANCELLED] * 2
    assert statuses[closed.pk] == JobStatus.CLOSED
    texts = message_texts(response)
    assert "Cancelled 2 job(s)." in texts
    assert any("cannot be cancelled" in text for text in texts)


def test_rerun_creates_a_job_with_the_same_inputs_and_opens_it(admin_client_a, supervisor, tenant, version_a, django_capture_on_commit_callbacks, redis_queue):
    job = make_job(tenant, versions=[version_a], source_system="ci", correlation_id="c-9")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_a.post(job_url(job, "rerun"))
    new_job = ExportJob.objects.exclude(pk=job.pk).get()
    assert response["Location"] == job_url(new_job)
    assert new_job.status == JobStatus.CREATED
    assert new_job.inputs == job.inputs
    assert (new_job.source_system, new_job.correlation_id) == ("ci", "c-9")
    assert new_job.created_by == supervisor.username and new_job.created_by_user == supervisor
    assert list(new_job.versions.all()) == [version_a]
    assert redis_queue.job_ids == [str(new_job.pk)]


def test_rerun_refused_by_the_job_limit_shows_the_message(admin_client_a, tenant, version_a):
    job = make_job(tenant, versions=[version_a])
    make_job(tenant, status=JobStatus.IN_PROGRESS)
    response = admin_client_a.post(job_url(job, "rerun"))
    assert response["Location"] == job_url(job)
    assert ExportJob.objects.count() == 2
    assert any("already runs 1 export job(s), its limit is 1" in text for text in message_texts(response))


def test_rerun_of_a_removed_version_shows_the_prerequisite_error(admin_client_a, tenant):
    job = make_job(tenant, inputs={"folders": ["gone"], "services": [], "version_ids": []})
    response = admin_client_a.post(job_url(job, "rerun"))
    assert ExportJob.objects.count() == 1
    assert any("gone" in text and "not re-run" in text for text in message_texts(response))


def test_rerun_action_of_one_job_opens_the_new_job(admin_client_a, tenant, version_a):
    job = make_job(tenant, versions=[version_a])
    response = admin_client_a.post(CHANGELIST, {"action": "rerun_jobs", "_selected_action": [str(job.pk)]})
    new_job = ExportJob.objects.exclude(pk=job.pk).get()
    assert response["Location"] == job_url(new_job)


def test_delete_package_removes_the_file_and_marks_it_expired(admin_client_a, tenant):
    job = make_job(tenant)
    name = store_package(job)
    stored = Path(settings.MEDIA_ROOT) / "packages" / name
    assert stored.exists()

    response = admin_client_a.post(job_url(job, "delete_package"))
    job.refresh_from_db()
    assert not job.package and job.package_expired_at is not None
    assert not stored.exists()
    assert any("Deleted the package" in text for text in message_texts(response))
    assert "expired (package deleted)" in admin_client_a.get(job_url(job)).content.decode()


def test_delete_packages_action(admin_client_a, tenant):
    jobs = [make_job(tenant) for _ in range(2)]
    for job in jobs:
        store_package(job)
    admin_client_a.post(CHANGELIST, {"action": "delete_packages", "_selected_action": [str(job.pk) for job in jobs]})
    assert not ExportJob.objects.exclude(package="").exists()
    assert ExportJob.objects.filter(package_expired_at__isnull=False).count() == 2
