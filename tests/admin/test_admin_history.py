"""The job lists over a long history: counts that stop at a bound, filters and a date hierarchy
whose choices read no job rows, a search that reads an index, and the dashboard's query count."""
from datetime import date, datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from exports.admin.history import periods
from exports.models import JobStatus
from tenants.admin.paginators import EstimatedCountPaginator
from tests.admin.conftest import make_import, make_job
from tests.query_counts import assert_queries

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:exports_exportjob_changelist")
IMPORTS = reverse("admin:exports_importjob_changelist")
DASHBOARD = reverse("admin:exports_dashboard")


@pytest.fixture
def exact_limit(monkeypatch):
    """Count exactly up to 3 jobs only, so that a few rows stand in for a million."""
    monkeypatch.setattr(EstimatedCountPaginator, "exact_limit", 3)
    return 3


def job_queries(captured) -> list[str]:
    """The queries of the export jobs, but the creator filter's loose index scan."""
    return [
        query["sql"] for query in captured.captured_queries
        if "exports_exportjob" in query["sql"] and "WITH RECURSIVE creators" not in query["sql"]
    ]


def analyze():
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE exports_exportjob")


# --- counts ----------------------------------------------------------------------------------


def test_a_filtered_list_counts_up_to_the_bound_then_estimates(admin_client_a, tenant, exact_limit):
    for _ in range(5):
        make_job(tenant)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client_a.get(CHANGELIST)  # a supervisor's list: filtered by tenant
    paginator = response.context["cl"].paginator
    assert paginator.count_is_estimate and paginator.count >= exact_limit + 1
    assert "about" in response.content.decode()
    counts = [sql for sql in job_queries(captured) if "COUNT(" in sql]
    assert counts and all(f"LIMIT {exact_limit + 1}" in sql for sql in counts)  # never more rows than the bound


def test_a_list_within_the_bound_is_counted_exactly(admin_client_a, tenant, exact_limit):
    for status in (JobStatus.FAILED, JobStatus.FAILED, JobStatus.CLOSED, JobStatus.CLOSED, JobStatus.CLOSED):
        make_job(tenant, status=status)
    response = admin_client_a.get(CHANGELIST, {"status__exact": "failed"})
    paginator = response.context["cl"].paginator
    assert (paginator.count, paginator.count_is_estimate) == (2, False)
    assert "about" not in response.content.decode()


def test_an_unfiltered_list_takes_the_tables_estimate_and_counts_no_row(admin_client, tenant, other_tenant, exact_limit):
    for owner in (tenant, tenant, tenant, other_tenant, other_tenant):
        make_job(owner)
    analyze()  # what autovacuum keeps current
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(CHANGELIST)  # a superuser's: every tenant, no filter
    paginator = response.context["cl"].paginator
    assert (paginator.count, paginator.count_is_estimate) == (5, True)
    assert not [sql for sql in job_queries(captured) if "COUNT(" in sql]


def test_facet_counts_stay_off(admin_client_a, tenant):
    make_job(tenant)
    plain = assert_queries("admin export job list", lambda: admin_client_a.get(CHANGELIST))
    with_facets = assert_queries("admin export job list", lambda: admin_client_a.get(CHANGELIST, {"_facets": "True"}))
    assert plain.status_code == with_facets.status_code == 200


# --- filters, search, date hierarchy -----------------------------------------------------------


def test_creator_filter_lists_the_creators_of_the_users_tenants_and_filters(admin_client_a, admin_client, tenant, other_tenant):
    for creator in ("ci-b", "ci-a", "ci-b", "alice@acme.test"):
        make_job(tenant, created_by=creator)
    make_job(other_tenant, created_by="globex-pipeline")
    make_import(tenant, created_by="importer-1")

    def choices(response):
        spec = next(spec for spec in response.context["cl"].filter_specs if spec.title == "created by")
        return [value for value, _ in spec.lookup_choices]

    assert choices(admin_client_a.get(CHANGELIST)) == ["alice@acme.test", "ci-a", "ci-b"]
    assert choices(admin_client.get(CHANGELIST)) == ["alice@acme.test", "ci-a", "ci-b", "globex-pipeline"]
    assert choices(admin_client_a.get(IMPORTS)) == ["importer-1"]  # each kind its own
    filtered = admin_client_a.get(CHANGELIST, {"created_by__exact": "ci-b"})
    assert {job.created_by for job in filtered.context["cl"].result_list} == {"ci-b"}
    assert len(filtered.context["cl"].result_list) == 2


def test_tenant_filter_lists_the_users_tenants_without_reading_jobs(admin_client, tenant, other_tenant):
    make_job(tenant)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(CHANGELIST, {"tenant__id__exact": str(other_tenant.pk)})
    spec = next(spec for spec in response.context["cl"].filter_specs if spec.title == "tenant")
    assert [label for _, label in spec.lookup_choices] == ["acme", "globex"]  # globex has no job
    assert list(response.context["cl"].result_list) == []
    assert not [sql for sql in job_queries(captured) if "DISTINCT" in sql]


def test_search_is_a_job_id_or_the_beginning_of_a_correlation_id(admin_client_a, tenant):
    job = make_job(tenant, correlation_id="Release-42")

    def found(term):
        return list(admin_client_a.get(CHANGELIST, {"q": term}).context["cl"].result_list)

    assert found("Release-4") == found(" Release-42 ") == found(str(job.pk)) == [job]
    assert found("release-4") == found("ease-42") == []  # case-sensitive, from the beginning


def test_date_hierarchy_spans_the_first_and_last_job_without_select_distinct(admin_client, tenant):
    make_job(tenant, created_ago=timedelta(days=800))
    make_job(tenant)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(CHANGELIST)
    html = response.content.decode()
    this_year = date.today().year
    for year in range(this_year - 2, this_year + 1):
        assert f"created_at__year={year}" in html
    assert not [sql for sql in job_queries(captured) if "DISTINCT" in sql or "DATE_TRUNC" in sql.upper()]


def test_periods_from_first_to_last():
    first = datetime(2025, 11, 30, 12, tzinfo=dt_timezone.utc)
    last = datetime(2026, 2, 1, 12, tzinfo=dt_timezone.utc)
    assert periods(first, last, "year") == [date(2025, 1, 1), date(2026, 1, 1)]
    assert periods(first, last, "month") == [date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]
    assert periods(first, first + timedelta(days=2), "day") == [date(2025, 11, 30), date(2025, 12, 1), date(2025, 12, 2)]
    assert periods(None, None, "year") == []


# --- the dashboard -----------------------------------------------------------------------------


def test_dashboard_query_count_does_not_grow_with_history(admin_client_a, tenant):
    make_job(tenant)
    assert assert_queries("admin supervisor dashboard", lambda: admin_client_a.get(DASHBOARD)).status_code == 200
    for days in range(1, 40, 3):
        make_job(tenant, created_ago=timedelta(days=days), status=JobStatus.FAILED if days % 2 else JobStatus.CLOSED)
        make_import(tenant, created_ago=timedelta(days=days))
    assert assert_queries("admin supervisor dashboard", lambda: admin_client_a.get(DASHBOARD)).status_code == 200
