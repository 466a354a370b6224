"""Rules for names that end up in URLs and ZIP paths: folders, services and versions.

Patterns are used with `fullmatch`: `$` would accept a trailing newline, and `\\d` any
Unicode digit.
"""
import re

from django.core.exceptions import ValidationError

CATALOG_NAME_RE = re.compile(r"[A-Za-z0-9_.\- ]{1,100}")
SEMVER_RE = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")


def catalog_name_problem(name: str) -> str | None:
    """Why `name` is not a valid folder or service name, or None when it is."""
    if not CATALOG_NAME_RE.fullmatch(name or ""):
        return (
            "use 1-100 letters, digits, '-', '_', '.' or spaces "
            "(no '/', '\\', '[', ']' or control characters)"
        )
    if ".." in name or name in {"."} or name != name.strip():
        return "it may not contain '..', be '.', or start or end with a space"
    return None


def validate_catalog_name(name: str) -> None:
    problem = catalog_name_problem(name)
    if problem:
        raise ValidationError(f"Invalid name {name!r}: {problem}.")


def parse_semver(version: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) for 'MAJOR.MINOR.PATCH', or None when it is not one."""
    match = SEMVER_RE.fullmatch(version or "")
    return tuple(int(part) for part in match.groups()) if match else None
