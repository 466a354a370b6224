"""Parsing of the service references a client may put in `inputs.services`.

Accepted forms (as the cspark SDK and the Spark docs send them):
`folder/service`, `folder/service[1.4]`, `folders/{f}/services/{s}[...]`,
a bare service_id UUID, `service/{service_id}` and `version/{version_id}`.
"""
import re
import uuid
from dataclasses import dataclass

from sparkexport.errors import InvalidServiceUri
from tenants.naming import catalog_name_problem, parse_version_prefix

BRACKET_RE = re.compile(r"(?P<path>[^\[\]]*)\[(?P<version>[^\[\]]*)\]")


@dataclass(frozen=True)
class NamedRef:
    raw: str
    folder: str
    service: str
    version: tuple[int, ...] | None = None  # a prefix of MAJOR.MINOR.PATCH

    @property
    def uri(self) -> str:
        return f"{self.folder}/{self.service}"


@dataclass(frozen=True)
class ServiceIdRef:
    raw: str
    service_id: uuid.UUID


@dataclass(frozen=True)
class VersionIdRef:
    raw: str
    version_id: uuid.UUID


ServiceRef = NamedRef | ServiceIdRef | VersionIdRef


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


def parse_service_reference(raw: str) -> ServiceRef:
    """One reference, parsed; InvalidServiceUri says which form was expected."""
    text = raw.strip()
    match = BRACKET_RE.fullmatch(text)
    path, version_text = (match["path"], match["version"].strip()) if match else (text, "")
    parts = [part for part in path.split("/") if part]

    version = None
    if version_text:
        version = parse_version_prefix(version_text)
        if version is None:
            raise _invalid(raw, f"'{version_text}' is not a version; use MAJOR[.MINOR[.PATCH]]")

    if len(parts) == 4 and parts[0] == "folders" and parts[2] == "services":
        return _named_ref(raw, parts[1], parts[3], version)
    if len(parts) == 2 and parts[0] in {"service", "version"}:
        if not parse_uuid(parts[1]):
            raise _invalid(raw, f"'{parts[1]}' is not a {parts[0]}_id UUID")
        if version is not None:
            raise _invalid(raw, "an id reference takes no [version]")
        if parts[0] == "service":
            return ServiceIdRef(raw, parse_uuid(parts[1]))
        return VersionIdRef(raw, parse_uuid(parts[1]))
    if len(parts) == 2:
        return _named_ref(raw, parts[0], parts[1], version)
    if len(parts) == 1 and not match and parse_uuid(parts[0]):
        return ServiceIdRef(raw, parse_uuid(parts[0]))
    raise _invalid(raw, "it matches none of the accepted forms")


def _named_ref(raw: str, folder: str, service: str, version) -> NamedRef:
    for kind, name in (("folder", folder), ("service", service)):
        problem = catalog_name_problem(name)
        if problem:
            raise _invalid(raw, f"{kind} name {name!r} is not valid: {problem}")
    return NamedRef(raw, folder, service, version)


def _invalid(raw: str, why: str) -> InvalidServiceUri:
    return InvalidServiceUri(
        f"Service reference {raw!r} is malformed: {why}. Use 'folder/service', "
        "'folder/service[1.2.3]', 'folders/{folder}/services/{service}', a service_id, "
        "'service/{service_id}' or 'version/{version_id}'.",
        details={"reference": raw},
    )


def is_version_specific(ref: ServiceRef) -> bool:
    return isinstance(ref, VersionIdRef) or (isinstance(ref, NamedRef) and ref.version is not None)
