"""Every endpoint x every kind of caller -> the expected status, and no body leaks another tenant.

Tenant "matrixco" holds the jobs under test; tenant "globexleak" is the neighbour whose slug,
job ids, service names, version ids and key names must never appear in an answer to anyone
outside it (and vice versa).
"""
import json
import hashlib
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from tenants.services import member_add, oauth_client_create
from tests.security.conftest import build_world

pytestmark = pytest.mark.django_db

HOME, NEIGHBOUR = "matrixco", "globexleak"


# --- the two worlds and the callers --------------------------------------------------------


def fetch_token(tenant, username: str, *, supervisor=False) -> str:
    """A bearer token through the real client-credentials grant."""
    member_add(tenant=tenant, username=username, supervisor=supervisor)
    _, client_id, secret = oauth_client_create(tenant=tenant, name=f"{username}-client", username=username)
    form = {"client_id": client_id, "client_secret": secret, "grant_type": "client_credentials"}
    response = Client().post(
        f"/auth/realms/{tenant.slug}/protocol/openid-connect/token",
        data=urlencode(form),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


@pytest.fixture
def worlds():
    home = build_world(HOME, "matrix", job_limit=100)
    neighbour = build_world(NEIGHBOUR, "globexleak", job_limit=100)
    return home, neighbour


def key_headers(secret: str, tenant_name: str) -> dict:
    return {"HTTP_X_SYNTHETIC_KEY": secret, "HTTP_X_TENANT_NAME": tenant_name}


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def caller_headers(scenario: str, endpoint: str, home, neighbour) -> dict:
    """The request headers of one kind of caller (the URL is always the home tenant's)."""
    if scenario == "no_credentials":
        return {}
    if scenario == "bad_key":
        return key_headers("deadbeef0000.not-a-real-secret", HOME)
    if scenario == "expired_token":
        token = fetch_token(home.tenant, "expired-user")
        AccessToken.objects.filter(token_checksum=hashlib.sha256(token.encode()).hexdigest()).update(expires=timezone.now() - timedelta(seconds=1))
        return bearer(token)
    if scenario == "unknown_token":
        return bearer("an-unknown-token")
    if scenario == "no_feature_permission":
        lacking = "imports_only" if endpoint.startswith("export") else "exports_only"
        return key_headers(home.keys[lacking], HOME)
    if scenario == "other_tenant_key":
        return key_headers(neighbour.keys["supervisor"], NEIGHBOUR)
    if scenario == "other_tenant_token":
        return bearer(fetch_token(neighbour.tenant, "neighbour-boss", supervisor=True))
    if scenario == "wrong_tenant_header":
        return key_headers(home.keys["owner"], NEIGHBOUR)
    if scenario == "other_caller":
        return key_headers(home.keys["second"], HOME)
    if scenario == "other_caller_token":
        return bearer(fetch_token(home.tenant, "plain-user"))
    if scenario == "owner":
        return key_headers(home.keys["owner"], HOME)
    if scenario == "supervisor_key":
        return key_headers(home.keys["supervisor"], HOME)
    if scenario == "supervisor_user":
        return bearer(fetch_token(home.tenant, "boss", supervisor=True))
    raise AssertionError(scenario)


def send(endpoint: str, world, headers: dict, *, slug: str | None = None):
    """One request to `endpoint` of `world`'s tenant (or of `slug`), about `world`'s jobs."""
    client = APIClient()
    base = f"/{slug or world.tenant.slug}/api/v4/"
    closed, running, imported = world.jobs["closed"].pk, world.jobs["in_progress"].pk, world.import_job.pk
    if endpoint == "export_create":
        body = {"inputs": {"folders": [f"{world.prefix}-folder"]}}
        return client.post(base + "export", body, format="json", **headers)
    if endpoint == "export_tenant_status":
        return client.get(base + "export/status", **headers)
    if endpoint == "export_status":
        return client.get(base + f"export/{closed}/status", **headers)
    if endpoint == "export_cancel":
        return client.patch(base + f"export/{running}", {"export_status": "cancelled"}, format="json", **headers)
    if endpoint == "export_download":
        return client.get(base + f"export/{closed}/file/package.zip", **headers)
    if endpoint == "import_create":
        entity = {
            "inputs": {
                "services_modify": [
                    {
                        "service_uri_source": f"{world.prefix}-folder/{world.prefix}-service",
                        "service_uri_destination": f"{world.prefix}-folder/copy",
                    }
                ]
            },
            "dry_run": True,
        }
        upload = SimpleUploadedFile("package.zip", world.package, content_type="application/zip")
        return client.post(
            base + "import", {"importRequestEntity": json.dumps(entity), "file": upload}, format="multipart", **headers
        )
    if endpoint == "import_tenant_status":
        return client.get(base + "import/status", **headers)
    if endpoint == "import_status":
        return client.get(base + f"import/{imported}/status", **headers)
    raise AssertionError(endpoint)


# --- the matrix ---------------------------------------------------------------------------

ENDPOINTS = [
    "export_create",
    "export_tenant_status",
    "export_status",
    "export_cancel",
    "export_download",
    "import_create",
    "import_tenant_status",
    "import_status",
]
JOB_ENDPOINTS = {"export_status", "export_cancel", "export_download", "import_status"}


def everywhere(status: int) -> dict:
    return dict.fromkeys(ENDPOINTS, status)


def own_jobs_only() -> dict:
    """A caller of the tenant that is not the jobs' creator: lists and POSTs work, others' jobs are 404."""
    return {endpoint: 404 if endpoint in JOB_ENDPOINTS else 200 for endpoint in ENDPOINTS}


EXPECTED = {
    "no_credentials": everywhere(401),
    "bad_key": everywhere(401),
    "expired_token": everywhere(401),
    "unknown_token": everywhere(401),
    "no_feature_permission": everywhere(403),
    "other_tenant_key": everywhere(403),
    "other_tenant_token": everywhere(403),
    "wrong_tenant_header": everywhere(403),
    "other_caller": own_jobs_only(),
    "other_caller_token": own_jobs_only(),
    "owner": everywhere(200),
    "supervisor_key": everywhere(200),
    "supervisor_user": everywhere(200),
}
ERROR_CODES = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "JOB_NOT_FOUND"}
MATRIX = [(scenario, endpoint, status) for scenario, row in EXPECTED.items() for endpoint, status in row.items()]


def assert_no_leak(response, world, *, allowed=()):
    """Nothing of `world` (another tenant) appears in the body, headers included."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    text = content.decode("utf-8", errors="replace") + json.dumps(dict(response.headers))
    for secret in world.secrets_of_data():
        if secret not in allowed:
            assert secret not in text, f"response leaks {secret!r} of tenant {world.tenant.slug}: {text[:300]}"


@pytest.mark.parametrize(("scenario", "endpoint", "expected"), MATRIX, ids=[f"{s}-{e}" for s, e, _ in MATRIX])
def test_access_matrix(worlds, scenario, endpoint, expected):
    home, neighbour = worlds
    response = send(endpoint, home, caller_headers(scenario, endpoint, home, neighbour))
    assert response.status_code == expected, (scenario, endpoint, getattr(response, "content", b"")[:300])
    if expected in ERROR_CODES:
        body = response.json()
        assert body["code"] == ERROR_CODES[expected], body
        assert response["Content-Type"].startswith("application/json")
    assert_no_leak(response, neighbour)


def test_matrix_covers_every_endpoint_and_caller():
    assert len(MATRIX) == len(ENDPOINTS) * len(EXPECTED) == 104


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_neighbour_asking_for_our_jobs_on_its_own_url_sees_nothing(worlds, endpoint):
    """The neighbour's supervisor, on its own tenant's URL, with our job ids: 404, and no data of ours."""
    home, neighbour = worlds
    headers = key_headers(neighbour.keys["supervisor"], NEIGHBOUR)
    response = send(endpoint, home, headers, slug=NEIGHBOUR)
    if endpoint in JOB_ENDPOINTS:
        assert response.status_code == 404, response.content
        assert response.json()["code"] == "JOB_NOT_FOUND"
    elif endpoint in ("export_create", "import_create"):
        # Our folder does not exist in the neighbour's tenant.
        assert response.status_code in (404, 422), response.content
    else:
        assert response.status_code == 200
    requested = {str(home.jobs["closed"].pk), str(home.jobs["in_progress"].pk), str(home.import_job.pk)}
    # The error may echo what the caller sent (the job id and folder in its own request), nothing else.
    assert_no_leak(response, home, allowed=requested | {home.prefix, f"{home.prefix}-folder", f"{home.prefix}-service"})


@pytest.mark.parametrize("kind", ["export", "import"])
def test_tenant_status_lists_only_the_callers_own_jobs(worlds, kind):
    home, _ = worlds
    second = APIClient()
    second.credentials(**key_headers(home.keys["second"], HOME))
    body = second.get(f"/{HOME}/api/v4/{kind}/status").json()
    ids = {job["id"] for job in body[f"in_progress_{kind}s"] + body[f"recent_{kind}s"]}
    assert ids == set()
    boss = APIClient()
    boss.credentials(**key_headers(home.keys["supervisor"], HOME))
    body = boss.get(f"/{HOME}/api/v4/{kind}/status").json()
    ids = {job["id"] for job in body[f"in_progress_{kind}s"] + body[f"recent_{kind}s"]}
    expected = {str(home.import_job.pk)} if kind == "import" else {str(job.pk) for job in home.jobs.values()}
    assert ids == expected


@pytest.mark.parametrize("path", ["/not%20a%20slug!/api/v4/import", "/x/api/v4/nowhere", "/api/unknown"])
def test_post_to_an_unknown_api_url_is_a_json_404_not_a_csrf_page(path):
    """Found by the fuzzer: the catch-all answered Django's HTML "CSRF cookie not set" 403."""
    response = Client(enforce_csrf_checks=True).post(path, data="{}", content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "NOT_FOUND"


def test_every_operation_documents_the_rate_limit_answer():
    """Any request can meet the authentication-failure limiter, so every operation lists 429."""
    schema = Client().get("/api/schema/?format=json").json()
    missing = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "429" not in operation["responses"]
    ]
    assert missing == []


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_too_many_authentication_failures_answer_429_on_every_endpoint(worlds, settings, endpoint):
    home, neighbour = worlds
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth_failure": "3/min"},
    }
    bad = key_headers("deadbeef0000.not-a-real-secret", HOME)
    statuses = [send(endpoint, home, bad).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    response = send(endpoint, home, bad)
    assert response.json()["code"] == "RATE_LIMITED"
    assert int(response["Retry-After"]) > 0
    assert_no_leak(response, neighbour)
