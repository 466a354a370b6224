"""The dashboard's figures on known data, and the page that shows them."""
from collections import Counter
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from exports.admin.charts import count_axis, daily_chart
from exports.dashboard import CHART_DAYS, percentile, queue_workers, tenant_dashboard
from exports.models import ExportJob, JobStatus
from tests.admin.conftest import make_job, store_package

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin:exports_dashboard")
S = JobStatus


@pytest.fixture
def known_jobs(tenant, other_tenant):
    minutes, days = (lambda n: timedelta(minutes=n)), (lambda n: timedelta(days=n))
    for seconds in (1, 2, 3, 4):
        make_job(tenant, created_ago=minutes(10), took=timedelta(seconds=seconds))
    slow = make_job(tenant, created_ago=days(2), took=timedelta(seconds=10))
    make_job(tenant, status=S.FAILED, created_ago=minutes(30))
    make_job(tenant, status=S.CANCELLED, created_ago=days(3))
    make_job(tenant, status=S.CLOSED_BY_TIMEOUT, created_ago=days(20))
    old = make_job(tenant, created_ago=days(8), took=timedelta(seconds=1))
    make_job(tenant, status=S.IN_PROGRESS, created_ago=minutes(1))
    make_job(tenant, status=S.CREATED, created_ago=minutes(2))
    for job in (slow, old):
        store_package(job)
    store_package(make_job(other_tenant))
    make_job(other_tenant, status=S.FAILED)
    make_job(other_tenant, status=S.IN_PROGRESS)
    return tenant


def test_percentile_interpolates_like_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([7], 0.95) == 7
    assert percentile([1000, 2000, 3000, 4000], 0.5) == 2500
    assert percentile([1000, 2000, 3000, 4000, 10000], 0.95) == pytest.approx(8800)


def test_tenant_dashboard_figures(known_jobs):
    figures = tenant_dashboard(known_jobs)

    assert (figures["in_progress"], figures["job_limit"]) == (2, 1)
    assert figures["last_hour"] == {S.CLOSED: 4, S.FAILED: 1, S.CANCELLED: 0, S.CLOSED_BY_TIMEOUT: 0}
    assert figures["last_7_days"] == {S.CLOSED: 5, S.FAILED: 1, S.CANCELLED: 1, S.CLOSED_BY_TIMEOUT: 0}
    # Closed in the last 7 days: 1, 2, 3, 4 and 10 seconds.
    assert figures["process_time_ms"] == {"median": 3000, "p95": pytest.approx(8800), "jobs": 5}
    assert figures["packages"] == {"count": 2, "bytes": 44}


def test_tenant_dashboard_daily_counts(known_jobs):
    figures = tenant_dashboard(known_jobs)
    daily = figures["daily"]
    today = timezone.localdate()
    assert [day["date"] for day in daily] == [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]

    expected = Counter()
    for created_at, status in ExportJob.objects.filter(tenant=known_jobs).values_list("created_at", "status"):
        key = "active" if status in (S.CREATED, S.IN_PROGRESS) else status
        expected[(timezone.localdate(created_at), key)] += 1
    got = Counter({(day["date"], key): n for day in daily for key, n in day["counts"].items() if n})
    assert got == Counter({k: n for k, n in expected.items() if k[0] >= daily[0]["date"]})
    assert sum(got.values()) == 10  # the timed-out job of 20 days ago is off the chart


def test_empty_tenant_has_no_percentiles(tenant):
    figures = tenant_dashboard(tenant)
    assert figures["process_time_ms"] == {"median": None, "p95": None, "jobs": 0}
    assert figures["packages"] == {"count": 0, "bytes": 0}
    assert sum(sum(day["counts"].values()) for day in figures["daily"]) == 0


def test_dashboard_page_renders_figures_and_a_chart(admin_client_a, known_jobs, admin_client_b):
    html = admin_client_a.get(DASHBOARD).content.decode()
    assert "Tenant acme" in html and "globex" not in html
    assert "<svg" in html and "<rect" in html and "closed by timeout" in html
    assert "2 / 1" in html  # jobs in progress against the limit
    assert "3,000 ms" in html and "8,800 ms" in html
    assert 'id="worker-count"' in html  # REDIS_URL is set in tests: counted on Redis
    assert "/admin/django_rq/dashboard/" not in html  # operators only


def test_dashboard_for_superuser_links_django_rq(admin_client, known_jobs):
    html = admin_client.get(DASHBOARD).content.decode()
    assert "Tenant acme" in html and "Tenant globex" in html
    assert reverse("admin:django_rq_dashboard_changelist") in html


def test_dashboard_in_development_mode(admin_client_a, tenant, settings):
    settings.EMBEDDED_QUEUE = True
    assert queue_workers()["embedded"] is True
    assert "in-process queue (development)" in admin_client_a.get(DASHBOARD).content.decode()


def test_queue_workers_counts_workers_on_redis(redis_queue):
    assert queue_workers() == {"embedded": False, "count": 0, "error": None}


def test_dashboard_is_linked_from_index_and_job_history(admin_client_a, tenant):
    assert DASHBOARD in admin_client_a.get(reverse("admin:index")).content.decode()
    assert DASHBOARD in admin_client_a.get(reverse("admin:exports_exportjob_changelist")).content.decode()


@pytest.mark.parametrize(
    "peak, ticks",
    [(0, [0, 1]), (1, [0, 1]), (3, [0, 1, 2, 3]), (4, [0, 1, 2, 3, 4]), (7, [0, 2, 4, 6, 8]), (9, [0, 5, 10]),
     (41, [0, 20, 40, 60]), (100, [0, 50, 100]), (1234, [0, 500, 1000, 1500])],
)
def test_count_axis_has_evenly_spaced_whole_numbers(peak, ticks):
    assert count_axis(peak) == ticks


def test_daily_chart_ticks_are_whole_numbers_at_their_height(known_jobs):
    chart = daily_chart(tenant_dashboard(known_jobs)["daily"])
    values = [tick["value"] for tick in chart["y_ticks"]]
    assert all(isinstance(value, int) for value in values)
    assert values == list(range(0, values[-1] + 1, values[1]))  # evenly spaced from 0
    unit = (chart["baseline"] - chart["y_ticks"][-1]["y"]) / values[-1]
    for tick in chart["y_ticks"]:
        assert tick["y"] == pytest.approx(chart["baseline"] - unit * tick["value"], abs=0.1)
    tallest = max(sum(bar["height"] for bar in chart["bars"] if bar["x"] == x) for x in {bar["x"] for bar in chart["bars"]})
    assert tallest <= chart["baseline"] - chart["y_ticks"][-1]["y"] + 0.2  # no bar above the top tick


def test_dashboard_shows_missing_process_times_as_the_sites_empty_mark(admin_client_a, tenant):
    html = admin_client_a.get(DASHBOARD).content.decode()
    assert html.count('<div class="value">—</div>') == 4  # median and p95, of exports and of imports
