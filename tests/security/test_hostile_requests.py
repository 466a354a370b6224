"""Hostile requests (issue 17): each answers JSON in the error shape with a 4xx, never a 500 or
HTML, and the server logs no error for them (the `no_server_errors` fixture)."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.exports.api_helpers import assert_error, post_export
from tests.imports.test_import_api import modify

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_server_errors")]

DEEP = "[" * 10000 + "]" * 10000
ENTITY = json.dumps({"inputs": modify(("claims/triage", None)), "dry_run": True})


def post_import_parts(api, **parts):
    data = {"file": SimpleUploadedFile("package.zip", b"PK\x05\x06" + b"\0" * 18, "application/zip"), **parts}
    return api.post(api.api("import"), data, format="multipart")


def json_part(text: str | bytes, name="entity.json"):
    return SimpleUploadedFile(name, text if isinstance(text, bytes) else text.encode(), "application/json")


# --- 1. one bounded JSON parser ------------------------------------------------------------


def test_deeply_nested_entity_field_is_a_400(api):
    assert_error(post_import_parts(api, importRequestEntity=DEEP), 400, "INVALID_REQUEST", "nested too deeply")


def test_deeply_nested_entity_part_is_a_400(api):
    assert_error(post_import_parts(api, importRequestEntity=json_part(DEEP)), 400, "INVALID_REQUEST", "nested too deeply")


def test_deeply_nested_json_body_is_a_400(api):
    response = api.post(api.api("export"), data=DEEP, content_type="application/json")
    assert_error(response, 400, "INVALID_REQUEST", "nested too deeply")


def test_nesting_below_the_recursion_limit_but_past_ours_is_a_400(api):
    body = {"inputs": {"folders": ["x"]}, "source_system": json.loads("[" * 200 + "]" * 200)}
    assert_error(post_export(api, body), 400, "INVALID_REQUEST", "nested too deeply")


# --- 4. JSON, never HTML, on API paths -----------------------------------------------------


def test_json_body_over_the_upload_limit_is_413_json(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"inputs": {"folders": ["x" * 2000]}})
    response = api.post(api.api("export"), data=body, content_type="application/json")
    assert_error(response, 413, "REQUEST_TOO_LARGE", "1000 bytes")


def test_form_with_too_many_fields_is_400_json(api, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    response = post_import_parts(api, importRequestEntity=ENTITY, **{f"extra{n}": "x" for n in range(20)})
    assert_error(response, 400, "INVALID_REQUEST", "too many fields")


def test_form_over_the_upload_limit_is_413_json(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post_import_parts(api, importRequestEntity=ENTITY, padding="x" * 5000)
    assert_error(response, 413, "REQUEST_TOO_LARGE", "1000 bytes")


@pytest.mark.parametrize("path", ["/acme/api/v4/export/status", "/auth/realms/acme/protocol/openid-connect/token"])
def test_disallowed_host_is_400_json_on_api_paths(tenant, path):
    response = Client(HTTP_HOST="evil.example").get(path)
    assert_error(response, 400, "INVALID_REQUEST", "Host")


def test_disallowed_host_is_400_json_even_in_debug(tenant, settings):
    settings.DEBUG = True
    response = Client(HTTP_HOST="evil.example").get("/acme/api/v4/export/status")
    assert_error(response, 400, "INVALID_REQUEST", "Host")


def test_get_on_the_token_endpoint_is_405_json(tenant):
    response = Client().get("/auth/realms/acme/protocol/openid-connect/token")
    body = assert_error(response, 405, "METHOD_NOT_ALLOWED", "POST")
    assert "POST" in response["Allow"]
    assert body["type"] == "invalid_input"


def test_oversize_entity_part_says_it_is_too_large(api):
    huge = json.dumps({"inputs": modify(("claims/triage", None)), "source_system": "x" * (2 << 20)})
    response = post_import_parts(api, importRequestEntity=json_part(huge))
    assert_error(response, 413, "REQUEST_TOO_LARGE", "importRequestEntity", "1048576 bytes")


# --- 6. ambiguous requests are refused -----------------------------------------------------


def test_two_file_parts_are_refused(api):
    data = {
        "importRequestEntity": ENTITY,
        "file": [SimpleUploadedFile("a.zip", b"a", "application/zip"), SimpleUploadedFile("b.zip", b"b", "application/zip")],
    }
    response = api.post(api.api("import"), data, format="multipart")
    assert_error(response, 400, "INVALID_REQUEST", "file", "once")


def test_entity_as_a_field_and_a_part_is_refused(api):
    response = post_import_parts(api, importRequestEntity=[ENTITY, json_part(ENTITY)])
    assert_error(response, 400, "INVALID_REQUEST", "importRequestEntity", "once")


def test_duplicate_keys_in_a_json_body_are_refused(api):
    text = '{"inputs": {"folders": ["a"]}, "inputs": {"folders": ["b"]}}'
    response = api.post(api.api("export"), data=text, content_type="application/json")
    assert_error(response, 400, "INVALID_REQUEST", "duplicate key", "inputs")


@pytest.mark.parametrize("as_part", [False, True])
def test_duplicate_keys_in_the_entity_are_refused(api, as_part):
    text = '{"inputs": {"services_modify": []}, "dry_run": true, "dry_run": false}'
    response = post_import_parts(api, importRequestEntity=json_part(text) if as_part else text)
    assert_error(response, 400, "INVALID_REQUEST", "duplicate key", "dry_run")
