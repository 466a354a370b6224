"""The OpenAPI schema describes every endpoint, with its errors, and validates; its docs pages
work without internet access."""
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command

from exports.error_codes import ANY_REQUEST, OPERATION_ERRORS, operation_error_codes
from tests.security.conftest import build_world

pytestmark = pytest.mark.django_db

DOCS_PAGES = ["/api/docs/", "/api/redoc/"]


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def resolve(schema: dict, node: dict) -> dict:
    """A schema object with its $ref (or a lone allOf $ref) followed."""
    if "allOf" in node and len(node["allOf"]) == 1:
        node = node["allOf"][0]
    if "$ref" in node:
        return schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_schema_lists_every_export_endpoint_with_its_errors(schema):
    paths = schema["paths"]
    assert set(paths) >= {
        "/{tenant}/api/v4/export",
        "/{tenant}/api/v4/export/status",
        "/{tenant}/api/v4/export/{job_id}/status",
        "/{tenant}/api/v4/export/{job_id}",
        "/{tenant}/api/v4/export/{job_id}/file/{file_name}",
    }
    create = paths["/{tenant}/api/v4/export"]["post"]
    assert {"200", "400", "401", "403", "404", "422", "429", "503"} <= set(create["responses"])
    assert "application/zip" in paths["/{tenant}/api/v4/export/{job_id}/file/{file_name}"]["get"]["responses"]["200"]["content"]
    assert {"ApiKey", "OAuth2ClientCredentials"} <= set(schema["components"]["securitySchemes"])


def listed_codes(response: dict) -> list[str]:
    return re.findall(r"^- `([A-Z0-9_]+)`: ", response["description"], re.MULTILINE)


def test_every_error_response_lists_the_codes_of_its_status(schema):
    operations = {op["operationId"]: op for path in schema["paths"].values() for op in path.values()}
    assert operations.keys() == OPERATION_ERRORS.keys()
    for operation_id, operation in operations.items():
        errors = {int(status): response for status, response in operation["responses"].items() if int(status) >= 400}
        assert {status: listed_codes(response) for status, response in errors.items()} == operation_error_codes(
            operation_id
        ), operation_id
        for status, response in errors.items():
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            assert ("Retry-After" in response.get("headers", {})) == (status in (429, 503)), (operation_id, status)


def test_codes_any_request_may_answer_are_in_the_description(schema):
    for code in ANY_REQUEST:
        assert f"`{code}`" in schema["info"]["description"]


def test_the_import_request_entity_is_a_json_object_part(schema):
    body = schema["paths"]["/{tenant}/api/v4/import"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["encoding"] == {"importRequestEntity": {"contentType": "application/json"}}
    upload = resolve(schema, body["schema"])
    entity = resolve(schema, upload["properties"]["importRequestEntity"])
    assert entity["type"] == "object"
    assert {"inputs", "services_existing", "source_system", "correlation_id", "dry_run"} <= set(entity["properties"])
    assert (upload["properties"]["file"]["type"], upload["properties"]["file"]["format"]) == ("string", "binary")


def test_a_client_generated_from_the_schema_downloads_with_accept_zip(client):
    """The schema answers the package as application/zip, so generated clients ask for it."""
    world = build_world("gen", "gen", job_ids={"closed": "0f0f0f0f-0000-4000-8000-00000000000a"})
    headers = {"HTTP_X_SYNTHETIC_KEY": world.keys["owner"], "HTTP_X_TENANT_NAME": "gen"}
    path = "/gen/api/v4/export/0f0f0f0f-0000-4000-8000-00000000000a/file/package.zip"
    response = client.get(path, HTTP_ACCEPT="application/zip", **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert b"".join(response.streaming_content) == world.package
    missing = client.get(path.replace("package.zip", "other.zip"), HTTP_ACCEPT="application/zip", **headers)
    assert (missing.status_code, missing["Content-Type"], missing.json()["code"]) == (404, "application/json", "JOB_NOT_FOUND")


def test_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


class _Links(HTMLParser):
    """Every src and href of a page."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def page_links(client, path: str) -> tuple[str, list[str]]:
    response = client.get(path)
    assert response.status_code == 200
    page = response.content.decode()
    parser = _Links()
    parser.feed(page)
    return page, parser.urls


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_pages_load_nothing_from_another_host(client, path):
    page, urls = page_links(client, path)
    assert urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{path} loads {url} from another host"
        assert parts.path.startswith(settings.STATIC_URL), f"{path} links {url}, not a static asset"
    assert "cdn." not in page and "googleapis" not in page


def test_swagger_ui_fetches_no_validator_badge(client):
    page, _ = page_links(client, "/api/docs/")
    assert '"validatorUrl": null' in page
    assert "SwaggerUIBundle(" in page


def test_every_docs_asset_is_found_and_collected(client, settings, tmp_path):
    assets = {urlsplit(url).path.removeprefix(settings.STATIC_URL) for path in DOCS_PAGES for url in page_links(client, path)[1]}
    assert {"drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
            "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"} <= assets
    for asset in assets:
        assert finders.find(asset), asset
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", "--no-input", verbosity=0)
    for asset in assets:
        assert (tmp_path / asset).stat().st_size > 0, asset


def test_health_answers_up_as_the_sdk_expects(client):
    assert client.get("/health").json() == {"status": "UP"}
