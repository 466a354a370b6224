"""A paginator for admin lists over a long history: it never counts more rows than a bound."""
import json

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Counted exactly up to here (200 pages of 50). Past it the count is an estimate that reads no
# rows: counting a million rows on every page view costs more than the page itself.
EXACT_COUNT_LIMIT = 10_000


class EstimatedCountPaginator(Paginator):
    """Django's Paginator whose count reads at most EXACT_COUNT_LIMIT + 1 rows.

    Up to the limit the count is exact. Past it (`count_is_estimate`), on PostgreSQL, it is the
    table's row estimate (pg_class.reltuples, kept by autovacuum) for an unfiltered list, or the
    planner's estimate for a filtered one, never below the limit; elsewhere (SQLite in
    development) an exact count. An estimate that is too high leaves the last pages empty.
    """

    exact_limit = EXACT_COUNT_LIMIT
    count_is_estimate = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list.order_by()
        if connections[queryset.db].vendor != "postgresql":
            return queryset.count()
        if not queryset.query.where:
            estimate = self._table_estimate(queryset)
            if estimate > self.exact_limit:
                self.count_is_estimate = True
                return estimate
        exact = queryset[: self.exact_limit + 1].count()
        if exact <= self.exact_limit:
            return exact
        self.count_is_estimate = True
        return max(exact, self._planner_estimate(queryset))

    @staticmethod
    def _table_estimate(queryset) -> int:
        """-1 for a table never analysed: then it is counted."""
        with connections[queryset.db].cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [queryset.model._meta.db_table])
            row = cursor.fetchone()
        return row[0] if row else -1

    @staticmethod
    def _planner_estimate(queryset) -> int:
        sql, params = queryset.values("pk").query.sql_with_params()
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return int(plan[0]["Plan"]["Plan Rows"])
