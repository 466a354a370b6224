"""Every read of the job history that a page, a poll or a command makes is served by an index.

Each read runs under EXPLAIN ANALYZE, with sequential scans disabled, on three thousand analysed
jobs of each kind: it must scan no job table sequentially, no index of one without a condition
on the index's first column if it has a WHERE (that reads the index whole; without one, only a
count bounded by its LIMIT reads the history), and no scan may discard more rows by a filter
than it keeps, past MAX_DISCARDED (a read bounded by an index only in part, such as the
tenant's half of the jobs, discards about 1,500). That is what grows with the history. A page
(ORDER BY ... LIMIT 50, or a MIN/MAX) may walk an index in its order and skip rows, as it stops
at the page; its list's count, checked too, needs an index that bounds the same filter. The
indexes of the files still stored are bounded by retention, not history. docs/scale.md has the
plans on a year of data.
"""
import random
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from exports.maintenance import stale_jobs
from exports.models import ExportJob, ImportJob, JobStatus
from exports.purge import exports_purge
from tenants.services import member_add
from tests.admin.conftest import logged_in, make_job
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db

HISTORY = ("exports_exportjob", "exports_importjob", "exports_auditevent", "exports_exportjob_versions")
RETENTION_INDEXES = {"exportjob_stored_package", "importjob_stored_upload"}
MAX_DISCARDED = 100
LEADING: dict[str, str] = {}  # index name → first column, read from the database
CHANGELIST = reverse("admin:exports_exportjob_changelist")


@pytest.fixture
def history(tenant, other_tenant):
    """Three thousand jobs of each kind over a year, mostly closed, a few stored packages."""
    rng = random.Random(14)
    statuses = [JobStatus.CLOSED] * 90 + [JobStatus.FAILED] * 6 + [JobStatus.CANCELLED] * 3 + [JobStatus.CLOSED_BY_TIMEOUT]
    for model in (ExportJob, ImportJob):
        model.objects.bulk_create(
            model(tenant=tenant if n % 2 else other_tenant, status=rng.choice(statuses), created_by=f"ci-{n % 7}",
                  correlation_id=f"run-{n}")
            for n in range(3000)
        )
        with connection.cursor() as cursor:  # created_at is set on insert: spread it over the year after
            cursor.execute(f"SELECT setseed(0.14); UPDATE {model._meta.db_table} SET created_at = now() - "
                           "random() * interval '365 days' WHERE status <> 'in_progress'")
            cursor.execute(f"UPDATE {model._meta.db_table} SET started_at = created_at, "
                           "finished_at = created_at + interval '5 seconds'")
    for days in (1, 2, 10):
        job = make_job(tenant, created_ago=timedelta(days=days), correlation_id=f"stored-{days}")
        ExportJob.objects.filter(pk=job.pk).update(package=f"acme/{job.pk}.zip", file_size=10)
    make_job(tenant, status=JobStatus.IN_PROGRESS, created_ago=timedelta(minutes=3))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE exports_exportjob; ANALYZE exports_importjob")
    return tenant


@pytest.fixture
def supervisor_client(tenant):
    """A supervisor of tenant acme (the history's half of the jobs)."""
    return logged_in(member_add(tenant=tenant, username="sue@acme.test", supervisor=True).user)


def leading_columns() -> dict[str, str]:
    """Index name → its first column, for the job tables' indexes."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, a.attname FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid::regclass::text = ANY(%s)", [list(HISTORY)]
        )
        return dict(cursor.fetchall())


def is_page(sql: str) -> bool:
    return bool(re.search(r"ORDER BY .* LIMIT \d{1,3}$", sql.strip())) or "MIN(" in sql


def plan_problems(node: dict, page: bool = False, filtered: bool = True) -> list[str]:
    """What in this plan (of a page, of a read with a WHERE) grows with the history."""
    problems = []
    relation, index = node.get("Relation Name", ""), node.get("Index Name", "")
    if node["Node Type"] == "Seq Scan" and relation in HISTORY:
        problems.append(f"sequential scan of {relation}")
    checked = (relation in HISTORY or index in LEADING) and index not in RETENTION_INDEXES and not page
    loops = node.get("Actual Loops", 1)
    discarded, kept = node.get("Rows Removed by Filter", 0) * loops, node.get("Actual Rows", 0) * loops
    if checked and discarded > max(MAX_DISCARDED, kept):
        problems.append(f"{node['Node Type']} of {index or relation} discards {discarded:.0f} rows, keeps "
                        f"{kept:.0f}: {node.get('Filter')}")
    if checked and filtered and index in LEADING and LEADING[index] not in node.get("Index Cond", ""):
        problems.append(f"{node['Node Type']} of {index} reads it whole: its first column, {LEADING[index]}, "
                        f"is not in its condition {node.get('Index Cond')}")
    for child in node.get("Plans", []):
        problems += plan_problems(child, page, filtered)
    return problems


def assert_history_read_by_indexes(captured):
    reads = [q["sql"] for q in captured.captured_queries
             if q["sql"].lstrip().upper().startswith(("SELECT", "WITH")) and any(table in q["sql"] for table in HISTORY)]
    assert reads
    LEADING.update(leading_columns())
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in reads:
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0][0]["Plan"]
            problems = plan_problems(plan, is_page(sql), filtered=" WHERE " in sql)
            assert not problems, (sql, problems)


def captured(call):
    with CaptureQueriesContext(connection) as queries:
        call()
    return queries


@pytest.mark.parametrize("query", [
    {}, {"status__exact": "failed"}, {"created_by__exact": "ci-3"}, {"q": "run-12"},
    {"created_at__year": str(timezone.now().year)},
])
def test_the_admin_lists_read_by_indexes(history, admin_client, supervisor_client, query):
    assert_history_read_by_indexes(captured(lambda: admin_client.get(CHANGELIST, query)))  # every tenant
    assert_history_read_by_indexes(captured(lambda: supervisor_client.get(CHANGELIST, query)))  # a supervisor's


def test_a_search_by_job_id_the_detail_and_the_dashboard_read_by_indexes(history, supervisor_client):
    job = ExportJob.objects.filter(tenant=history).first()
    assert_history_read_by_indexes(captured(lambda: supervisor_client.get(CHANGELIST, {"q": str(job.pk)})))
    assert_history_read_by_indexes(captured(lambda: supervisor_client.get(reverse("admin:exports_exportjob_change", args=[job.pk]))))
    assert_history_read_by_indexes(captured(lambda: supervisor_client.get(reverse("admin:exports_dashboard"))))


def test_the_status_polls_the_reaper_and_the_purge_read_by_indexes(history, client, redis_queue):
    key = make_api_key(history)
    headers = {"HTTP_X_SYNTHETIC_KEY": key, "HTTP_X_TENANT_NAME": history.slug, "HTTP_CACHE_CONTROL": "no-cache"}
    job = ExportJob.objects.filter(tenant=history).first()
    assert_history_read_by_indexes(captured(lambda: client.get(f"/{history.slug}/api/v4/export/status", **headers)))
    assert_history_read_by_indexes(captured(lambda: client.get(f"/{history.slug}/api/v4/import/status", **headers)))
    assert_history_read_by_indexes(captured(lambda: client.get(f"/{history.slug}/api/v4/export/{job.pk}/status", **headers)))
    assert_history_read_by_indexes(captured(stale_jobs))
    assert_history_read_by_indexes(captured(lambda: exports_purge(older_than=timedelta(days=7), apply=True)))
