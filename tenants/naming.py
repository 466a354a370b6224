"""Rules for names that end up in URLs and ZIP paths: folders, services and versions.

One place for the catalog, the export references and the package reader; no Django import.
Patterns are used with `fullmatch`: `$` would accept a trailing newline, and `\\d` any
Unicode digit.
"""
import re

CATALOG_NAME_RE = re.compile(r"[A-Za-z0-9_.\- ]{1,100}")
SEMVER_RE = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
# A reference's [version]: MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH, matched component-wise.
VERSION_PREFIX_RE = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9}){0,2}")


def catalog_name_problem(name: object) -> str | None:
    """Why `name` is not a valid folder or service name, or None when it is."""
    if not isinstance(name, str) or not CATALOG_NAME_RE.fullmatch(name):
        return (
            "use 1-100 letters, digits, '-', '_', '.' or spaces "
            "(no '/', '\\', '[', ']' or control characters)"
        )
    if ".." in name or name in {"."} or name != name.strip():
        return "it may not contain '..', be '.', or start or end with a space"
    return None


def parse_semver(version: object) -> tuple[int, int, int] | None:
    """(major, minor, patch) for 'MAJOR.MINOR.PATCH', or None when it is not one."""
    match = SEMVER_RE.fullmatch(version) if isinstance(version, str) else None
    return tuple(int(part) for part in match.groups()) if match else None


def parse_version_prefix(text: object) -> tuple[int, ...] | None:
    """(major[, minor[, patch]]) of a reference's version prefix, or None when it is not one."""
    if not isinstance(text, str) or not VERSION_PREFIX_RE.fullmatch(text):
        return None
    return tuple(int(part) for part in text.split("."))
