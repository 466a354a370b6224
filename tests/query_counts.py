"""Query counts against recorded baselines (NetBox's pattern): one helper for every test that
guards how many SQL queries a path runs.

Each measured path has a name and a baseline in tests/query_baselines.json. A test fails when
its path runs more queries than recorded, or fewer (then the baseline is stale: lower it). To
record new figures after a deliberate change:

    make test PYTEST_ARGS="-k query" QUERY_BASELINES=record

and review the diff of tests/query_baselines.json like any other change.
"""
import json
import os
from pathlib import Path

from django.db import connection
from django.test.utils import CaptureQueriesContext

BASELINES_FILE = Path(__file__).with_name("query_baselines.json")
_recorded: dict[str, int] = {}  # this run's counts, in record mode


def _baselines() -> dict:
    return json.loads(BASELINES_FILE.read_text()) if BASELINES_FILE.exists() else {}


def assert_queries(name: str, call):
    """Run `call()`, check its query count against the baseline `name`, answer its result."""
    with CaptureQueriesContext(connection) as context:
        result = call()
    count = len(context.captured_queries)
    if os.environ.get("QUERY_BASELINES") == "record":
        _recorded[name] = max(count, _recorded.get(name, 0))
        baselines = {**_baselines(), **_recorded}
        BASELINES_FILE.write_text(json.dumps(dict(sorted(baselines.items())), indent=2) + "\n")
        return result
    expected = _baselines().get(name)
    assert expected is not None, f"no baseline for {name!r}: record it with QUERY_BASELINES=record"
    sql = "\n".join(query["sql"][:200] for query in context.captured_queries)
    assert count == expected, f"{name}: {count} queries, the baseline is {expected}:\n{sql}"
    return result
