"""The OpenAPI schema describes every endpoint, with its errors, and validates."""
import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_lists_every_export_endpoint_with_its_errors(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
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


def test_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


def test_swagger_ui_is_served(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_health_answers_up_as_the_sdk_expects(client):
    assert client.get("/health").json() == {"status": "UP"}
