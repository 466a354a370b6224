"""API keys and OAuth2 client-credentials tokens, across two tenants."""
import hashlib
from datetime import timedelta
from unittest import mock
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application

from exports.models import ExportJob
from tenants.models import ApiKey
from tenants.services import apikey_create, apikey_revoke, member_add, oauth_client_create
from tests.conftest import SparkClient
from tests.factories import ServiceVersionFactory, make_api_key

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"


def token_url(slug: str) -> str:
    return f"/auth/realms/{slug}/protocol/openid-connect/token"


def request_token(slug: str, client_id: str, client_secret: str, **extra):
    """The token request exactly as the cspark SDK sends it, `Bearer None` included."""
    form = {"client_id": client_id, "client_secret": client_secret, "grant_type": "client_credentials"}
    form.update(extra)
    return Client().post(
        token_url(slug), data=urlencode(form), content_type=FORM, HTTP_AUTHORIZATION="Bearer None"
    )


def make_client(tenant, username="robot", supervisor=False, name="ci-client"):
    member_add(tenant=tenant, username=username, supervisor=supervisor)
    _, client_id, secret = oauth_client_create(tenant=tenant, name=name, username=username)
    return client_id, secret


def bearer(tenant_slug: str, token: str) -> SparkClient:
    client = SparkClient(tenant_slug, "unused")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def fetch_token(tenant, **kwargs) -> str:
    response = request_token(tenant.slug, *make_client(tenant, **kwargs))
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def export_one(client, tenant, folder="f"):
    version = ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name=folder)
    response = client.post(
        client.api("export"), {"inputs": {"version_ids": [str(version.version_id)]}}, format="json"
    )
    assert response.status_code == 200, response.json()
    return response.json()["id"]


def assert_unauthorized(response):
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["code"] == "UNAUTHORIZED"
    assert body["message"]
    return body


# --- token endpoint -----------------------------------------------------------------------


def test_client_credentials_grant_issues_a_token(tenant):
    response = request_token(tenant.slug, *make_client(tenant))
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["access_token"]
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0


def test_token_request_with_basic_auth_also_works(tenant):
    import base64

    client_id, secret = make_client(tenant)
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = Client().post(
        token_url(tenant.slug),
        data=urlencode({"grant_type": "client_credentials"}),
        content_type=FORM,
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert response.status_code == 200, response.content


def test_wrong_secret_is_invalid_client(tenant):
    client_id, _ = make_client(tenant)
    response = request_token(tenant.slug, client_id, "not-the-secret")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert not AccessToken.objects.exists()


def test_unknown_client_is_invalid_client(tenant):
    response = request_token(tenant.slug, "nobody", "nothing")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_client_of_another_tenant_is_refused_at_this_realm(tenant, other_tenant):
    client_id, secret = make_client(other_tenant)
    response = request_token(tenant.slug, client_id, secret)
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert tenant.slug in body["error_description"]
    assert not AccessToken.objects.exists()


def test_unknown_realm_is_invalid_client(tenant):
    client_id, secret = make_client(tenant)
    assert request_token("no-such-tenant", client_id, secret).status_code == 401


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", ""])
def test_other_grant_types_are_unsupported(tenant, grant_type):
    client_id, secret = make_client(tenant)
    response = request_token(tenant.slug, client_id, secret, grant_type=grant_type)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_token_endpoint_refuses_get(tenant):
    response = Client().get(token_url(tenant.slug))
    assert response.status_code == 405


# --- bearer tokens on the API -------------------------------------------------------------


def test_bearer_token_authenticates_export_calls(tenant):
    client = bearer(tenant.slug, fetch_token(tenant, username="robot@acme.test"))
    response = client.get(client.api("export/status"))
    assert response.status_code == 200, response.json()
    job_id = export_one(client, tenant)
    assert ExportJob.objects.get(pk=job_id).created_by == "robot@acme.test"
    (summary,) = client.get(client.api("export/status")).json()["in_progress_exports"]
    assert summary["data"]["created_by"] == "robot@acme.test"
    assert client.get(client.api(f"export/{job_id}/status")).status_code == 200


def test_token_keeps_working_for_the_same_user_across_tokens(tenant):
    client_id, secret = make_client(tenant)
    first = bearer(tenant.slug, request_token(tenant.slug, client_id, secret).json()["access_token"])
    job_id = export_one(first, tenant)
    second = bearer(tenant.slug, request_token(tenant.slug, client_id, secret).json()["access_token"])
    assert second.get(second.api(f"export/{job_id}/status")).status_code == 200


def test_expired_token_is_unauthorized(tenant):
    token = fetch_token(tenant)
    AccessToken.objects.filter(token_checksum=hashlib.sha256(token.encode()).hexdigest()).update(expires=timezone.now() - timedelta(seconds=1))
    client = bearer(tenant.slug, token)
    body = assert_unauthorized(client.get(client.api("export/status")))
    assert "token" in body["message"]


def test_deleted_client_token_is_unauthorized(tenant):
    token = fetch_token(tenant)
    Application.objects.all().delete()
    client = bearer(tenant.slug, token)
    assert_unauthorized(client.get(client.api("export/status")))


@pytest.mark.parametrize("header", ["Bearer None", "Bearer ", "Bearer unknown-token", "bearer x"])
def test_unknown_bearer_token_is_unauthorized(tenant, header):
    client = SparkClient(tenant.slug, "unused")
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_unauthorized(client.get(client.api("export/status")))


def test_token_of_another_tenant_is_forbidden(tenant, other_tenant):
    client = bearer(tenant.slug, fetch_token(other_tenant))
    response = client.get(client.api("export/status"))
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    assert tenant.slug in response.json()["message"]


def test_token_of_another_tenant_cannot_see_or_cancel_a_job(tenant, other_tenant, api):
    job_id = export_one(api, tenant)
    client = bearer(tenant.slug, fetch_token(other_tenant))
    assert client.get(client.api(f"export/{job_id}/status")).status_code == 403
    response = client.patch(client.api(f"export/{job_id}"), {"export_status": "cancelled"}, format="json")
    assert response.status_code == 403
    client.tenant_slug = other_tenant.slug
    assert client.get(client.api(f"export/{job_id}/status")).status_code == 404
    assert ExportJob.objects.get(pk=job_id).status == "created"


def test_token_whose_user_left_the_tenant_is_unauthorized(tenant):
    token = fetch_token(tenant, username="leaver")
    tenant.memberships.filter(user__username="leaver").delete()
    client = bearer(tenant.slug, token)
    assert_unauthorized(client.get(client.api("export/status")))


def test_normal_token_user_sees_only_its_own_jobs(tenant, api):
    tenant.export_api_job_limit = 5
    tenant.save(update_fields=["export_api_job_limit"])
    key_job = export_one(api, tenant, folder="a")
    client = bearer(tenant.slug, fetch_token(tenant))
    own_job = export_one(client, tenant, folder="b")
    ids = {job["id"] for job in client.get(client.api("export/status")).json()["in_progress_exports"]}
    assert ids == {own_job}
    assert client.get(client.api(f"export/{key_job}/status")).json()["code"] == "JOB_NOT_FOUND"
    ids = {job["id"] for job in api.get(api.api("export/status")).json()["in_progress_exports"]}
    assert ids == {key_job}


def test_supervisor_token_user_sees_every_job(tenant, api):
    tenant.export_api_job_limit = 5
    tenant.save(update_fields=["export_api_job_limit"])
    key_job = export_one(api, tenant, folder="a")
    user_job = export_one(bearer(tenant.slug, fetch_token(tenant, username="worker", name="c1")), tenant, folder="b")
    boss = bearer(tenant.slug, fetch_token(tenant, username="boss", supervisor=True, name="c2"))
    ids = {job["id"] for job in boss.get(boss.api("export/status")).json()["in_progress_exports"]}
    assert ids == {key_job, user_job}
    assert boss.get(boss.api(f"export/{key_job}/status")).status_code == 200
    response = boss.patch(boss.api(f"export/{user_job}"), {"export_status": "cancelled"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


# --- API keys -----------------------------------------------------------------------------


def test_api_key_is_stored_hashed(tenant):
    api_key, key = apikey_create(tenant=tenant, name="hashed")
    prefix, secret = key.split(".", 1)
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert stored.prefix == prefix
    assert stored.secret_hash != secret and secret not in stored.secret_hash
    assert len(stored.secret_hash) == 64
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tenants_apikey")
        columns = [str(value) for row in cursor.fetchall() for value in row]
    assert not any(secret in value for value in columns)
    assert not any(key in value for value in columns)


def test_api_key_authenticates(tenant):
    client = SparkClient(tenant.slug, make_api_key(tenant))
    assert client.get(client.api("export/status")).status_code == 200


def test_revoked_key_is_unauthorized(tenant):
    key = make_api_key(tenant, name="old")
    client = SparkClient(tenant.slug, key)
    for _ in range(3):  # the third request is answered from the key's snapshot
        assert client.get(client.api("export/status")).status_code == 200
    apikey_revoke(api_key=ApiKey.objects.get(name="old"))
    body = assert_unauthorized(client.get(client.api("export/status")))
    assert "revoked" in body["message"]


def test_rotated_key_replaces_the_old_one(tenant):
    old = make_api_key(tenant, name="ci")
    new = make_api_key(tenant, name="ci", rotate=True)
    assert_unauthorized(SparkClient(tenant.slug, old).get(f"/{tenant.slug}/api/v4/export/status"))
    assert SparkClient(tenant.slug, new).get(f"/{tenant.slug}/api/v4/export/status").status_code == 200


@pytest.mark.parametrize("mangle", [lambda k: k + "x", lambda k: k.split(".")[0], lambda k: "." + k.split(".")[1], lambda k: k.upper(), lambda k: ""])
def test_altered_key_is_unauthorized(tenant, mangle):
    client = SparkClient(tenant.slug, mangle(make_api_key(tenant)))
    assert_unauthorized(client.get(client.api("export/status")))


def test_last_used_at_is_recorded(tenant):
    key = make_api_key(tenant, name="used")
    assert ApiKey.objects.get(name="used").last_used_at is None
    before = timezone.now()
    client = SparkClient(tenant.slug, key)
    client.get(client.api("export/status"))
    last_used = ApiKey.objects.get(name="used").last_used_at
    assert last_used is not None and last_used >= before


def test_last_used_at_is_not_written_on_every_request(tenant):
    key = make_api_key(tenant, name="busy")
    client = SparkClient(tenant.slug, key)
    client.get(client.api("export/status"))
    first = ApiKey.objects.get(name="busy").last_used_at
    for _ in range(3):
        client.get(client.api("export/status"))
    assert ApiKey.objects.get(name="busy").last_used_at == first
    later = timezone.now() + timedelta(minutes=5)
    with mock.patch("django.utils.timezone.now", return_value=later):
        client.get(client.api("export/status"))
    assert ApiKey.objects.get(name="busy").last_used_at > first


def test_supervisor_key_is_flagged(tenant):
    api_key, _ = apikey_create(tenant=tenant, name="boss", supervisor=True)
    assert api_key.is_supervisor


def test_api_key_takes_precedence_over_a_bearer_none_header(tenant):
    client = SparkClient(tenant.slug, make_api_key(tenant))
    client.credentials(
        HTTP_X_SYNTHETIC_KEY=client._credentials["HTTP_X_SYNTHETIC_KEY"],
        HTTP_X_TENANT_NAME=tenant.slug,
        HTTP_AUTHORIZATION="Bearer None",
    )
    assert client.get(client.api("export/status")).status_code == 200


def test_basic_auth_of_another_tenants_client_is_refused(tenant, other_tenant):
    import base64

    client_id, secret = make_client(other_tenant)
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = Client().post(
        token_url(tenant.slug),
        data=urlencode({"grant_type": "client_credentials", "client_id": make_client(tenant)[0]}),
        content_type=FORM,
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert response.status_code == 401
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize("header", ["Basic !!!", "Basic " + "////", "Basic"])
def test_garbled_basic_auth_is_invalid_client(tenant, header):
    response = Client().post(
        token_url(tenant.slug),
        data=urlencode({"grant_type": "client_credentials"}),
        content_type=FORM,
        HTTP_AUTHORIZATION=header,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_tokens_are_stored_hashed(tenant):
    """RFC 9700 §4: a copy of the database gives away no usable bearer token."""
    token = fetch_token(tenant)
    stored = AccessToken.objects.get()
    assert token not in (stored.token, str(stored))
    assert stored.token_checksum == hashlib.sha256(token.encode()).hexdigest()
