"""version.json's catalog fields (release note, tags, effective dates, compiler version, author),
checked for the type, format and length the catalog stores, so that a package the reader accepts
can be written as it is (tenants/models.py ServiceVersion; tests/imports/test_hostile_metadata.py
holds the two to the same lengths)."""

from __future__ import annotations

from datetime import datetime, timezone

from exports.packages.reader.model import UNCHANGED, InvalidPackage, VersionDetails, show

MAX_AUTHOR_CHARS = 150
MAX_COMPILER_VERSION_CHARS = 64
MAX_TAGS = 100
MAX_TAG_CHARS = 100


def version_details(metadata: dict, label: str) -> VersionDetails:
    """The checked catalog fields of one version.json; InvalidPackage naming the first bad field."""

    def invalid(field: str, expected: str) -> InvalidPackage:
        return InvalidPackage(
            f"The package's version.json of {label} has an invalid {field} {show(metadata[field])}: "
            f"expected {expected}. {UNCHANGED}"
        )

    def text(field: str, max_chars: int | None = None) -> str:
        value = metadata.get(field)
        if value is None:
            return ""
        if not _storable(value) or (max_chars is not None and len(value) > max_chars):
            raise invalid(field, "text" + (f" of at most {max_chars} characters" if max_chars else ""))
        return value

    def moment(field: str) -> datetime | None:
        value = metadata.get(field)
        if value is None:
            return None
        parsed = _iso_datetime(value)
        if parsed is None:
            raise invalid(field, "null or an ISO 8601 date and time, e.g. 2024-01-31T00:00:00Z")
        return parsed

    tags = metadata.get("tags")
    if tags is not None and not (
        isinstance(tags, list) and len(tags) <= MAX_TAGS
        and all(_storable(tag) and len(tag) <= MAX_TAG_CHARS for tag in tags)
    ):
        raise invalid("tags", f"a list of at most {MAX_TAGS} texts of at most {MAX_TAG_CHARS} characters")
    return VersionDetails(
        release_note=text("release_note"),
        tags=tuple(tags or ()),
        effective_start_date=moment("effective_start_date"),
        effective_end_date=moment("effective_end_date"),
        compiler_version=text("compiler_version", MAX_COMPILER_VERSION_CHARS),
        author=text("author", MAX_AUTHOR_CHARS),
    )


def _storable(value: object) -> bool:
    """Text a database column holds: PostgreSQL refuses NUL, and a lone surrogate has no UTF-8."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _iso_datetime(value: object) -> datetime | None:
    """An ISO 8601 date and time (a time zone-less one is UTC), or None when it is not one."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)
