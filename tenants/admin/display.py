"""How the admin shows values: one mark for a missing value, sizes in words, hashes, tables, dates.

Every helper answers the site's `empty_value_display` for a missing value, as Django's own
columns do, so that an empty cell looks the same on every list and detail page.
"""
import json
from collections.abc import Callable, Iterable, Sequence

from django.contrib import admin
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

EMPTY_VALUES = (None, "", [], {}, ())


def empty_value() -> SafeString:
    """The site's mark for a missing value (set once in tenants/admin/__init__.py)."""
    return mark_safe(admin.site.empty_value_display)


def or_empty(value):
    """The value, or the empty mark for None and blank strings and collections."""
    return empty_value() if value in EMPTY_VALUES else value


def byte_size(size: int | None) -> str:
    """A byte count in words ("1.2 MB"); the empty mark when unknown."""
    return empty_value() if size is None else filesizeformat(size)


def duration_ms(milliseconds: int | None) -> str:
    """A duration as "1,234 ms"; the empty mark when unknown."""
    return empty_value() if milliseconds is None else f"{milliseconds:,} ms"


def code(value) -> SafeString:
    """A value in monospace (a hash, an id); the empty mark when there is none."""
    return empty_value() if value in EMPTY_VALUES else format_html("<code>{}</code>", value)


def short_hash(value: str, length: int = 12) -> SafeString:
    """The start of a hash or id, the whole of it in the tooltip."""
    if not value or len(value) <= length:
        return code(value)
    return format_html('<code title="{}">{}…</code>', value, value[:length])


def html_table(headers: Sequence[str] | None, rows: Iterable[Sequence]) -> SafeString:
    """A table of formatted cells (escaped unless marked safe), with a header row unless
    `headers` is None; the empty mark when there is no row."""
    rows = list(rows)
    if not rows:
        return empty_value()
    cells = "".join("<td>{}</td>" for _ in rows[0])
    body = format_html_join("", f"<tr>{cells}</tr>", rows)
    head = ""
    if headers is not None:
        head = format_html("<thead><tr>{}</tr></thead>", format_html_join("", "<th>{}</th>", ((h,) for h in headers)))
    return format_html('<table class="detail-table">{}<tbody>{}</tbody></table>', head, body)


def plain(value) -> str:
    """A JSON value in words: lists joined by commas, mappings as compact JSON."""
    if value in EMPTY_VALUES:
        return empty_value()
    if isinstance(value, (list, tuple)):
        return ", ".join(str(plain(item)) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def records_table(records, columns: Sequence[tuple[str, str]]) -> SafeString:
    """A list of JSON objects as a table, one column per (key, header) of `columns` that any
    object fills; an item that is not an object goes in the first column."""
    if records in EMPTY_VALUES:
        records = []
    elif not isinstance(records, list):
        records = [records]
    first_key = columns[0][0]
    records = [item if isinstance(item, dict) else {first_key: item} for item in records]
    columns = [(key, header) for key, header in columns if any(item.get(key) not in EMPTY_VALUES for item in records)]
    rows = [[plain(item.get(key)) for key, _ in columns] for item in records]
    return html_table([header for _, header in columns], rows)


def mapping_table(mapping: dict) -> SafeString:
    """A JSON object as rows of (key in words, value); empty entries left out."""
    rows = [(key.replace("_", " "), plain(value)) for key, value in (mapping or {}).items() if value not in EMPTY_VALUES]
    return html_table(None, rows)


def short_datetime(value) -> SafeString:
    """A moment to the minute ("2026-12-01 17:05", in the site's time zone): a list column that
    fits where Django's "Dec. 1, 2026, 5:05 p.m." takes twice the room."""
    if value is None:
        return empty_value()
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        local.strftime("%Y-%m-%d %H:%M"),
    )


def field_display(name: str, description: str, show: Callable = or_empty):
    """A display method for model field `name`, its value passed through `show` (by default
    `or_empty`: a blank value shows as the empty mark, where Django shows only None so)."""

    @admin.display(description=description, ordering=name)
    def display(model_admin, obj):
        return show(getattr(obj, name))

    display.__name__ = f"{name}_display"
    return display


# The list column of every model with a `created_at`.
created_column = field_display("created_at", "created", short_datetime)
