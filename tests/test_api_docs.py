"""docs/api.md, the API contract, stays true to the code, and so does the table of error codes.

Error codes are collected from the product source: the codes errors are raised with
(`code="..."`, the error classes' default `code`, the JSON error handler's), and the codes
recorded on jobs (`job_fail(..., "CODE", ...)`, `{"code": "..."}` items).
"""
import ast
import re
from pathlib import Path

import pytest
from django.urls import URLPattern

from exports.api import urls as tenant_api_urls
from exports.error_codes import ANY_REQUEST, ERROR_CODES, JOB_ERROR_CODES, OPERATION_ERRORS, WARNING_CODES
from tenants.api import urls as token_urls

ROOT = Path(__file__).resolve().parent.parent
API_DOC = (ROOT / "docs" / "api.md").read_text()
PRODUCT = ["sparkexport", "tenants", "exports"]
CODE_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")

# Codes the product raises outside the API: management commands and the admin print them.
OUTSIDE_THE_API = {
    "TENANT_EXISTS": "tenant_create",
    "VERSION_EXISTS": "service_version_add and the admin's catalog upload",
    "UPLOAD_EXPIRED": "the admin's re-run of an import",
    "INVALID_WORKBOOK": "service_version_add and the admin's catalog upload",
    "INVALID_NEURON_PACKAGE": "service_version_add and the admin's catalog upload",
    **dict.fromkeys(
        ["WEBHOOK_URL_INVALID", "WEBHOOK_URL_NOT_HTTPS", "WEBHOOK_HOST_UNRESOLVED", "WEBHOOK_ADDRESS_NOT_PUBLIC",
         "WEBHOOK_EVENT_UNKNOWN", "WEBHOOK_NOT_FOUND"],
        "webhook_add, webhook_remove and the admin's webhook endpoints",
    ),
}


def _text(node) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE_RE.match(node.value):
        return node.value
    return None


def _call_name(node: ast.Call) -> str:
    return getattr(node.func, "id", None) or getattr(node.func, "attr", "")


def _codes_in(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(codes errors are raised with, codes recorded on jobs) in one module."""
    raised, recorded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "code":
            raised.add(_text(node.value))
        elif isinstance(node, ast.ClassDef):  # an error class's default code
            raised |= {_text(s.value) for s in node.body if isinstance(s, ast.Assign)
                       and any(getattr(t, "id", None) == "code" for t in s.targets)}
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:  # INVALID_WORKBOOK = "INVALID_WORKBOOK"
            if getattr(node.targets[0], "id", None) == _text(node.value):
                raised.add(_text(node.value))
        elif isinstance(node, ast.Tuple) and len(node.elts) >= 2:  # the handler's (type, code, message)
            kind = node.elts[0]
            if isinstance(kind, ast.Constant) and isinstance(kind.value, str) and kind.value.islower():
                raised.add(_text(node.elts[1]))
        elif isinstance(node, ast.Call) and _call_name(node) == "error_body" and len(node.args) >= 2:
            raised.add(_text(node.args[1]))
        elif isinstance(node, ast.Call) and _call_name(node) == "job_fail" and len(node.args) >= 3:
            recorded.add(_text(node.args[2]))
        elif isinstance(node, ast.Dict):
            recorded |= {_text(v) for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant) and k.value == "code"}
    return raised - {None}, recorded - {None}


def product_codes() -> tuple[set[str], set[str]]:
    raised, recorded = set(), set()
    for app in PRODUCT:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                more_raised, more_recorded = _codes_in(ast.parse(path.read_text()))
                raised |= more_raised
                recorded |= more_recorded
    return raised, recorded


RAISED, RECORDED = product_codes()


def test_the_collector_finds_the_codes_of_every_kind_of_source():
    assert {"INVALID_REQUEST", "NOT_FOUND", "JOB_LIMIT_REACHED"} <= RAISED  # error classes' defaults
    assert {"VERSION_FILTER_CONFLICT", "INVALID_DOWNLOAD_LINK", "SERVICE_EXISTS"} <= RAISED  # code="..."
    assert {"UNAUTHORIZED", "RATE_LIMITED", "INTERNAL_ERROR", "ERROR"} <= RAISED  # the JSON error handler
    assert {"WORKER_LOST", "JOB_TIMEOUT", "SERVICE_NOT_SELECTED", "PACKAGE_EXPIRED"} <= RECORDED


def test_every_code_raised_is_an_api_error_code_or_known_to_stay_outside_the_api():
    assert RAISED - OUTSIDE_THE_API.keys() == ERROR_CODES.keys()
    assert OUTSIDE_THE_API.keys() <= RAISED
    assert not OUTSIDE_THE_API.keys() & ERROR_CODES.keys()


def test_every_code_recorded_on_a_job_is_documented():
    assert RECORDED == JOB_ERROR_CODES.keys() | WARNING_CODES.keys()


def test_every_api_error_code_is_listed_by_an_operation_or_answered_by_any_request():
    listed = {code for codes in OPERATION_ERRORS.values() for code in codes}
    assert ERROR_CODES.keys() == listed | set(ANY_REQUEST)
    assert not listed & set(ANY_REQUEST)


# --- docs/api.md ------------------------------------------------------------------------------


SPANS = re.findall(r"`([^`\n]+)`", API_DOC)


def documented(word: str) -> bool:
    """`word` is in docs/api.md as code: alone, or as a part of a field path (`outputs.files[]`,
    `{code, message}`, `Cache-Control: no-cache`), not as a part of a URL or another word."""
    alone = re.compile(rf"(?:^|[.{{\s]){re.escape(word)}(?=$|[.\[\s,:}}])")
    return any(alone.search(span) for span in SPANS)


def test_every_error_code_is_in_the_contract():
    missing = sorted(code for code in RAISED | RECORDED if not documented(code))
    assert not missing, f"docs/api.md does not mention {missing}"


def test_every_error_code_is_documented_with_its_status():
    for code, (status, _) in ERROR_CODES.items():
        assert re.search(rf"^\| {status} \| `{code}` \|", API_DOC, re.MULTILINE), f"no '| {status} | `{code}` |' row"


def _route(pattern: URLPattern) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))


def _methods(pattern: URLPattern) -> list[str]:
    view = pattern.callback.view_class
    return [method.upper() for method in ("get", "post", "patch", "put", "delete") if hasattr(view, method)]


@pytest.mark.parametrize("pattern", tenant_api_urls.urlpatterns, ids=lambda p: p.name)
def test_every_tenant_api_route_is_in_the_contract(pattern):
    for method in _methods(pattern):
        assert f"`{method} {_route(pattern)}`" in API_DOC


@pytest.mark.parametrize("pattern", token_urls.urlpatterns, ids=lambda p: p.name)
def test_the_token_endpoint_is_in_the_contract(pattern):
    assert f"`POST /auth/realms/{{tenant}}/{_route(pattern)}`" in API_DOC


def _properties(schema: dict, node: dict, seen: set) -> tuple[set[str], set[str]]:
    """(property names, enum values) of a schema object and everything it holds."""
    names, values = set(), set(node.get("enum") or []) - {None}
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return names, values
        seen.add(name)
        node = schema["components"]["schemas"][name]
        values |= set(node.get("enum") or []) - {None}
    children = [*node.get("properties", {}).values(), *node.get("allOf", []), *node.get("oneOf", [])]
    for child in children + ([node["items"]] if "items" in node else []):
        more_names, more_values = _properties(schema, child, seen)
        names |= more_names
        values |= more_values
    return names | set(node.get("properties", {})), values


def _operation_words(schema: dict, direction: str) -> tuple[set[str], set[str]]:
    names, values = set(), set()
    for operations in schema["paths"].values():
        for operation in operations.values():
            if direction == "request":
                bodies = operation.get("requestBody", {}).get("content", {}).values()
                names |= {p["name"] for p in operation.get("parameters", []) if p["in"] != "path"}
            else:
                bodies = operation["responses"]["200"].get("content", {}).values()
            for body in bodies:
                more_names, more_values = _properties(schema, body["schema"], set())
                names |= more_names
                values |= more_values
    return names, values


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from django.test import Client

    with django_db_blocker.unblock():
        return Client().get("/api/schema/", {"format": "json"}).json()


@pytest.mark.parametrize("direction", ["request", "response"])
def test_every_field_option_and_value_of_the_api_is_in_the_contract(schema, direction):
    names, values = _operation_words(schema, direction)
    assert names and values
    missing = sorted(word for word in names | {str(value) for value in values} if not documented(word))
    assert not missing, f"docs/api.md does not mention these {direction} fields or values: {missing}"
