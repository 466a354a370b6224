"""Import jobs in the supervisor admin: scoped like export jobs, with cancel and re-run, and on the dashboard."""
from collections import Counter
from datetime import timedelta

import django_rq
import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from exports.dashboard import CHART_DAYS, tenant_dashboard, tenant_import_figures
from exports.models import ExportJob, ImportJob, JobStatus
from tenants.models import Folder, ServiceVersion
from tests.admin.conftest import logged_in, make_import, make_job
from tests.factories import ServiceVersionFactory
from tests.imports.conftest import export_all, run_workers
from tests.imports.test_import_api import import_and_run, modify
from tests.query_counts import assert_queries

pytestmark = pytest.mark.django_db

S = JobStatus
CHANGELIST = reverse("admin:exports_importjob_changelist")
DASHBOARD = reverse("admin:exports_dashboard")


def job_url(job, action=None) -> str:
    return reverse(f"admin:exports_importjob_{action or 'change'}", args=[job.pk])


def messages_of(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in get_messages(response.wsgi_request)]


# --- history and detail ------------------------------------------------------------------


def test_supervisor_sees_only_their_tenants_import_jobs(supervisor, tenant, other_tenant):
    own = make_import(tenant, correlation_id="mine")
    other = make_import(other_tenant, correlation_id="theirs")
    client = logged_in(supervisor)

    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert b"mine" in page.content and b"theirs" not in page.content
    assert DASHBOARD in page.content.decode()

    detail = client.get(job_url(own))
    assert detail.status_code == 200
    assert b"pricing/quote" in detail.content
    assert client.get(job_url(other)).status_code == 404


def test_detail_shows_the_request_and_outcome_as_tables_in_words(admin_client_a, tenant):
    source, destination = "pricing/quote", "pricing/<b>quote-copy</b>"  # names are the client's: escaped
    outputs = {
        "services": [{"service_uri_source": source, "service_uri_destination": destination, "service_id_destination": "s-1", "status": "replaced"}],
        "service_versions": [
            {"service_uri_source": f"{source}[1.0.0]", "service_uri_destination": f"{destination}[1.0.0]", "version_id_destination": "v-1", "status": "replaced"}
        ],
    }
    job = make_import(
        tenant, services_modify=[{"service_uri_source": source, "service_uri_destination": destination}],
        services_existing="replace", outputs=outputs, upload_size=3 * 1024 * 1024,
        warnings=[{"code": "SERVICE_NOT_SELECTED", "message": "pricing/home is in the package but not in services_modify"}],
    )
    html = admin_client_a.get(job_url(job)).content.decode()
    escaped = "pricing/&lt;b&gt;quote-copy&lt;/b&gt;"
    assert f"<td>{source}</td><td>{escaped}</td>" in html  # services to import
    assert f"<td>{source}</td><td>{escaped}</td><td>s-1</td><td>replaced</td>" in html
    assert f"<td>{source}[1.0.0]</td><td>{escaped}[1.0.0]</td><td>v-1</td><td>replaced</td>" in html
    assert "<th>from the package</th><th>to</th><th>version id</th><th>outcome</th>" in html
    assert "<td>SERVICE_NOT_SELECTED</td>" in html
    assert "<b>quote-copy</b>" not in html and "&quot;service_uri_source&quot;" not in html  # no raw JSON
    assert "<label>If a service exists:</label>" in html and ">replace</div>" in html
    assert "<label>Skip unchanged:</label>" in html and "<label>Allow missing dependencies:</label>" in html
    assert "<label>Upload size:</label>" in html and "3.0\xa0MB" in html
    assert "Services modify" not in html and "Services existing" not in html


def test_import_list_columns(admin_client_a, tenant):
    make_import(tenant, dry_run=True, correlation_id="rehearsal")
    response = admin_client_a.get(CHANGELIST)
    assert response.context["cl"].list_display == [
        "action_checkbox", "short_id", "status_badge", "created_by", "correlation", "dry_run", "created", "process_time"
    ]
    assert "rehearsal" in response.content.decode()


def test_import_jobs_cannot_be_added_edited_or_deleted(supervisor, tenant):
    job = make_import(tenant)
    client = logged_in(supervisor)
    assert client.get(reverse("admin:exports_importjob_add")).status_code == 403
    assert client.post(job_url(job), {}).status_code == 403
    assert client.get(reverse("admin:exports_importjob_delete", args=[job.pk])).status_code == 403
    assert client.get(CHANGELIST, {"q": str(job.pk)}).context["cl"].result_count == 1


def changelist(client):
    response = assert_queries("admin import job list", lambda: client.get(CHANGELIST))
    assert response.status_code == 200


def test_changelist_query_count_does_not_grow_with_import_jobs(admin_client_a, tenant):
    statuses = (S.CLOSED, S.FAILED, S.CREATED)
    for index in range(3):
        make_import(tenant, status=statuses[index % 3], created_by=f"user{index % 2}", dry_run=index % 2 == 0)
    changelist(admin_client_a)
    for index in range(27):
        make_import(tenant, status=statuses[index % 3], created_by=f"user{index % 2}", dry_run=index % 2 == 0)
    assert ImportJob.objects.count() == 30
    changelist(admin_client_a)


def test_detail_buttons_follow_the_job_state(admin_client_a, tenant):
    created = make_import(tenant, status=S.CREATED)
    closed = make_import(tenant, status=S.CLOSED)

    html = admin_client_a.get(job_url(created)).content.decode()
    assert 'id="job-cancel"' in html and 'id="job-rerun"' in html
    assert f'action="{job_url(created, "cancel")}"' in html and 'method="post"' in html
    assert 'id="job-delete-package"' not in html  # an export-only action
    assert "not kept" in html  # no upload on this row

    html = admin_client_a.get(job_url(closed)).content.decode()
    assert 'id="job-cancel"' not in html and 'id="job-rerun"' in html


# --- scoping of the actions ----------------------------------------------------------------


def test_actions_on_another_tenants_import_job_are_404_and_change_nothing(admin_client_a, other_tenant):
    theirs = make_import(other_tenant, status=S.CREATED)
    for action in ("cancel", "rerun"):
        assert admin_client_a.post(job_url(theirs, action)).status_code == 404
    for action in ("cancel_jobs", "rerun_jobs"):
        admin_client_a.post(CHANGELIST, {"action": action, "_selected_action": [str(theirs.pk)]})
    theirs.refresh_from_db()
    assert theirs.status == S.CREATED and theirs.finished_at is None
    assert ImportJob.objects.count() == 1


def test_actions_need_post(admin_client_a, tenant):
    job = make_import(tenant, status=S.CREATED)
    assert admin_client_a.get(job_url(job, "cancel")).status_code == 405
    assert admin_client_a.get(job_url(job, "rerun")).status_code == 405
    job.refresh_from_db()
    assert job.status == S.CREATED


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_button_cancels_a_created_import(admin_client_a, tenant):
    job = make_import(tenant, status=S.CREATED)
    response = admin_client_a.post(job_url(job, "cancel"))
    assert response.status_code == 302 and response["Location"] == job_url(job)
    job.refresh_from_db()
    assert job.status == S.CANCELLED and job.finished_at is not None
    assert ("success", f"Job {job.pk} cancelled.") in messages_of(response)


def test_cancel_of_a_closed_import_shows_the_conflict_as_an_error(admin_client_a, tenant):
    job = make_import(tenant, status=S.CLOSED)
    finished_at = job.finished_at
    response = admin_client_a.post(job_url(job, "cancel"))
    assert response["Location"] == job_url(job)
    job.refresh_from_db()
    assert (job.status, job.finished_at) == (S.CLOSED, finished_at)
    assert messages_of(response) == [
        ("error", f"Import job {job.pk} has already finished with status 'closed', so it cannot be cancelled.")
    ]


def test_cancel_action_on_the_import_changelist(admin_client_a, tenant):
    active = [make_import(tenant, status=status) for status in (S.CREATED, S.IN_PROGRESS)]
    failed = make_import(tenant, status=S.FAILED)
    response = admin_client_a.post(
        CHANGELIST, {"action": "cancel_jobs", "_selected_action": [str(job.pk) for job in (*active, failed)]}
    )
    assert response.status_code == 302
    statuses = dict(ImportJob.objects.values_list("pk", "status"))
    assert [statuses[job.pk] for job in active] == [S.CANCELLED] * 2
    assert statuses[failed.pk] == S.FAILED
    texts = messages_of(response)
    assert ("success", "Cancelled 2 job(s).") in texts
    assert any(level == "error" and "cannot be cancelled" in text for level, text in texts)


# --- re-run ----------------------------------------------------------------------------------


@pytest.fixture
def imported(tenant, other_tenant, api, other_api, redis_queue, django_capture_on_commit_callbacks) -> ImportJob:
    """A closed import into globex of a package exported from acme by the real export path."""
    ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing", service__name="quote", version="1.0.0")
    package = export_all(api, django_capture_on_commit_callbacks, folders=("pricing",))
    Folder.objects.create(tenant=other_tenant, name="pricing")
    entity = {"inputs": modify(("pricing/quote", None)), "services_existing": "replace"}
    status = import_and_run(other_api, django_capture_on_commit_callbacks, package, entity)
    assert status["status"] == "closed", status
    job = ImportJob.objects.get()
    assert job.upload  # kept for re-runs
    return job


def test_rerun_creates_a_queued_import_of_the_kept_upload_and_opens_it(
    imported, other_tenant, admin_client_b, django_capture_on_commit_callbacks
):
    imports_queue = django_rq.get_queue("imports")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_b.post(job_url(imported, "rerun"))

    new_job = ImportJob.objects.exclude(pk=imported.pk).get()
    assert response.status_code == 302 and response["Location"] == job_url(new_job)
    assert ("success", f"Job {imported.pk} re-run as {new_job.pk}.") in messages_of(response)
    assert (new_job.tenant, new_job.status, new_job.dry_run) == (other_tenant, S.CREATED, False)
    assert new_job.created_by == "bob@globex.test" and new_job.created_by_user.username == "bob@globex.test"
    assert (new_job.services_modify, new_job.services_existing) == (imported.services_modify, "replace")
    assert new_job.upload and new_job.upload.name != imported.upload.name
    assert imports_queue.job_ids == [str(new_job.pk)]

    with django_capture_on_commit_callbacks(execute=True):
        run_workers()
    new_job.refresh_from_db()
    assert new_job.status == S.CLOSED, new_job.errors
    assert ServiceVersion.objects.filter(service__folder__tenant=other_tenant).count() == 1  # replaced, not added


def test_rerun_action_of_one_import_opens_the_new_job(imported, admin_client_b, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_b.post(CHANGELIST, {"action": "rerun_jobs", "_selected_action": [str(imported.pk)]})
    new_job = ImportJob.objects.exclude(pk=imported.pk).get()
    assert response["Location"] == job_url(new_job)
    assert django_rq.get_queue("imports").job_ids == [str(new_job.pk)]


def test_rerun_refused_by_the_import_job_limit_shows_the_message(imported, other_tenant, admin_client_b):
    running = make_import(other_tenant, status=S.IN_PROGRESS)
    response = admin_client_b.post(job_url(imported, "rerun"))
    assert response["Location"] == job_url(imported)
    assert set(ImportJob.objects.values_list("pk", flat=True)) == {imported.pk, running.pk}
    assert any(
        level == "error" and "not re-run" in text and "already runs 1 import job(s), its limit is 1" in text
        for level, text in messages_of(response)
    )


def test_rerun_of_a_dry_run_says_the_upload_was_not_kept(admin_client_a, tenant):
    dry_run = make_import(tenant, dry_run=True)
    response = admin_client_a.post(job_url(dry_run, "rerun"))
    assert response["Location"] == job_url(dry_run)
    assert ImportJob.objects.count() == 1
    [(level, text)] = messages_of(response)
    assert level == "error"
    assert text.startswith(f"Job {dry_run.pk} was not re-run: Import job {dry_run.pk} kept no upload")  # UPLOAD_EXPIRED


# --- the dashboard ---------------------------------------------------------------------------


@pytest.fixture
def known_imports(tenant, other_tenant):
    minutes, days = (lambda n: timedelta(minutes=n)), (lambda n: timedelta(days=n))
    for seconds in (2, 4, 6):
        make_import(tenant, created_ago=minutes(10), took=timedelta(seconds=seconds))
    make_import(tenant, created_ago=minutes(20), took=timedelta(0), dry_run=True)  # closed at once
    make_import(tenant, created_ago=days(2), took=timedelta(0), dry_run=True)
    make_import(tenant, status=S.FAILED, created_ago=minutes(40))
    make_import(tenant, status=S.CANCELLED, created_ago=days(3))
    make_import(tenant, status=S.CLOSED_BY_TIMEOUT, created_ago=days(6))
    make_import(tenant, created_ago=days(30), took=timedelta(seconds=1))  # off the chart
    make_import(tenant, status=S.IN_PROGRESS, created_ago=minutes(1))
    make_import(tenant, status=S.CREATED, created_ago=minutes(1))
    ImportJob.objects.filter(tenant=tenant, created_at__gte=timezone.now() - minutes(15), dry_run=False).exclude(
        status__in=(S.CREATED, S.IN_PROGRESS)
    ).update(upload="imports/acme/kept.zip", upload_size=1000)
    make_import(other_tenant, status=S.IN_PROGRESS)
    make_import(other_tenant, status=S.FAILED)
    return tenant


def test_tenant_import_figures(known_imports):
    figures = tenant_import_figures(known_imports)

    assert (figures["in_progress"], figures["job_limit"]) == (2, 1)
    assert figures["last_hour"] == {S.CLOSED: 4, S.FAILED: 1, S.CANCELLED: 0, S.CLOSED_BY_TIMEOUT: 0}
    assert figures["last_7_days"] == {S.CLOSED: 5, S.FAILED: 1, S.CANCELLED: 1, S.CLOSED_BY_TIMEOUT: 1}
    # Real imports closed in the last 7 days took 2, 4 and 6 seconds; dry runs are left out.
    assert figures["process_time_ms"] == {"median": 4000, "p95": pytest.approx(5800), "jobs": 3}
    assert figures["dry_runs_last_7_days"] == 2
    assert figures["uploads"] == {"count": 3, "bytes": 3000}


def test_tenant_import_daily_counts(known_imports):
    daily = tenant_import_figures(known_imports)["daily"]
    assert len(daily) == CHART_DAYS and daily[-1]["date"] == timezone.localdate()
    expected = Counter()
    for created_at, status in ImportJob.objects.filter(tenant=known_imports).values_list("created_at", "status"):
        key = "active" if status in (S.CREATED, S.IN_PROGRESS) else status
        expected[(timezone.localdate(created_at), key)] += 1
    got = Counter({(day["date"], key): n for day in daily for key, n in day["counts"].items() if n})
    assert got == Counter({k: n for k, n in expected.items() if k[0] >= daily[0]["date"]})
    assert sum(got.values()) == 10  # the import of 30 days ago is off the chart


def test_imports_and_exports_are_counted_apart(known_imports):
    make_job(known_imports, status=S.IN_PROGRESS)
    figures = tenant_dashboard(known_imports)
    assert figures["in_progress"] == 1 and figures["imports"]["in_progress"] == 2
    assert sum(sum(day["counts"].values()) for day in figures["daily"]) == 1
    assert figures["imports"] == tenant_import_figures(known_imports)


def test_empty_tenant_import_figures(tenant):
    figures = tenant_import_figures(tenant)
    assert figures["in_progress"] == 0
    assert figures["process_time_ms"] == {"median": None, "p95": None, "jobs": 0}
    assert figures["uploads"] == {"count": 0, "bytes": 0}
    assert sum(sum(day["counts"].values()) for day in figures["daily"]) == 0


def test_dashboard_page_shows_import_figures_and_chart(admin_client_a, known_imports):
    html = admin_client_a.get(DASHBOARD).content.decode()
    panel = html[html.index('id="tenant-acme"') :]
    imports = panel[panel.index('id="imports-acme"') :]
    assert "globex" not in html
    assert "2 / 1" in imports  # imports in progress against the import job limit
    assert "4,000 ms" in imports and "5,800 ms" in imports
    assert '<svg class="import-chart"' in imports and "<rect" in imports.split('class="import-chart"')[1]
    assert "Imports per day, last 14 days (10 in all)" in imports
    assert f"{CHANGELIST}?tenant__id__exact={known_imports.pk}" in imports
    assert 'id="import-worker-count"' in html


def test_job_detail_shows_the_audit_trail(supervisor, tenant, api):
    ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing")
    job_id = api.post(api.api("export"), {"inputs": {"folders": ["pricing"]}}, format="json").json()["id"]
    client = logged_in(supervisor)
    client.post(reverse("admin:exports_exportjob_cancel", args=[job_id]))

    page = client.get(reverse("admin:exports_exportjob_change", args=[job_id]))

    text = page.content.decode()
    assert ExportJob.objects.get(pk=job_id).status == "cancelled"
    assert "created" in text and "API key &#x27;ci-key&#x27;" in text
    assert "cancelled" in text and "admin session of sue@acme.test" in text
