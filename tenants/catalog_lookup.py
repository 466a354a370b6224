"""Rows named by many (folder, service) pairs or ids, in a bounded number of flat queries.

An OR of one `Q(folder, name)` per pair nests one level per pair: SQLite refuses an expression
tree deeper than 1,000 and PostgreSQL plans it slowly. Instead each batch asks for the folders IN
(...) and names IN (...) it names, a constant-depth condition of at most 2 x BATCH parameters
(SQLite allows 32,766); the caller keeps the rows of its exact pairs.
"""
from collections.abc import Iterable, Iterator
from itertools import islice

from django.db.models import Q, QuerySet

BATCH = 1000
CONDITIONS_PER_QUERY = 3


def batches(items: Iterable, size: int = BATCH) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def pair_conditions(pairs: Iterable[tuple[str, str]], *, folder: str, name: str) -> list[Q]:
    """Conditions that together hold for every row of `pairs` (and maybe a few more: match exactly after)."""
    return [
        Q(**{f"{folder}__in": {f for f, _ in batch}, f"{name}__in": {n for _, n in batch}})
        for batch in batches(sorted(set(pairs)))
    ]


def in_conditions(lookup: str, values: Iterable) -> list[Q]:
    return [Q(**{f"{lookup}__in": batch}) for batch in batches(sorted(set(values), key=str))]


def rows_where_any(queryset: QuerySet, conditions: list[Q]) -> list:
    """The rows of `queryset` for which one of `conditions` holds, each once; a usual request (a
    condition or three) is one query, a large one a query per three batches."""
    found = {}
    for group in batches(conditions, CONDITIONS_PER_QUERY):
        either = Q()
        for condition in group:
            either |= condition
        for row in queryset.filter(either):
            found[row.pk] = row
    return list(found.values())
