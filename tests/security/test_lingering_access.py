"""Access that must end at once: an OAuth client whose user was deactivated, left the tenant or
was deleted; a token endpoint that issues tokens only for its own realm's clients; django-rq's
statistics for superusers only; Idempotency-Keys that belong to one credential."""
import base64
import re
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from oauth2_provider.models import AccessToken

from exports.models import ExportJob
from tenants.services import member_add, oauth_client_create
from tests.conftest import SparkClient
from tests.factories import ServiceVersionFactory, make_api_key

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"


def token_url(slug: str) -> str:
    return f"/auth/realms/{slug}/protocol/openid-connect/token"


def token_request(slug: str, form: dict, authorization: str = "Bearer None"):
    return Client().post(token_url(slug), data=urlencode(form), content_type=FORM, HTTP_AUTHORIZATION=authorization)


def client_credentials(tenant, username: str, name: str = "pipeline") -> tuple[str, str]:
    member_add(tenant=tenant, username=username)
    _, client_id, secret = oauth_client_create(tenant=tenant, name=name, username=username)
    return client_id, secret


def fetch_token(tenant, client_id: str, secret: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    response = token_request(tenant.slug, form)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def bearer(tenant, token: str) -> SparkClient:
    client = SparkClient(tenant.slug, "unused")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def basic(client_id: str, secret: str, scheme: str = "Basic") -> str:
    return f"{scheme} {base64.b64encode(f'{client_id}:{secret}'.encode()).decode()}"


# --- hole 1: a user's OAuth clients stop working the moment the user may no longer act ------


def deactivate(tenant, username):
    user = get_user_model().objects.get(username=username)
    user.is_active = False
    user.save()


def leave_tenant(tenant, username):
    tenant.memberships.filter(user__username=username).delete()


def delete_user(tenant, username):
    get_user_model().objects.filter(username=username).delete()


@pytest.mark.parametrize("end_access", [deactivate, leave_tenant, delete_user])
def test_ending_a_users_access_refuses_their_tokens_and_issues_no_new_one(tenant, end_access):
    client_id, secret = client_credentials(tenant, "leaver")
    client = bearer(tenant, fetch_token(tenant, client_id, secret))
    assert client.get(client.api("export/status")).status_code == 200

    end_access(tenant, "leaver")

    response = client.get(client.api("export/status"))
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "UNAUTHORIZED"
    tokens_before = AccessToken.objects.count()
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    refused = token_request(tenant.slug, form)
    assert refused.status_code == 401, refused.content
    assert refused.json()["error"] == "invalid_client"
    assert AccessToken.objects.count() == tokens_before


def test_a_user_deactivated_without_signals_is_refused_on_the_next_request(tenant):
    """`update()` sends no signal, so the tokens stay: the check on every request refuses them."""
    client_id, secret = client_credentials(tenant, "bulk")
    client = bearer(tenant, fetch_token(tenant, client_id, secret))
    get_user_model().objects.filter(username="bulk").update(is_active=False)
    response = client.get(client.api("export/status"))
    assert response.status_code == 401
    assert "user bulk is inactive" in response.json()["message"]


def test_reactivated_user_needs_a_new_token(tenant):
    """Deactivation revokes the tokens it refuses: turning the user back on does not revive them."""
    client_id, secret = client_credentials(tenant, "sabbatical")
    client = bearer(tenant, fetch_token(tenant, client_id, secret))
    deactivate(tenant, "sabbatical")
    user = get_user_model().objects.get(username="sabbatical")
    user.is_active = True
    user.save()
    assert client.get(client.api("export/status")).status_code == 401
    fresh = bearer(tenant, fetch_token(tenant, client_id, secret))
    assert fresh.get(fresh.api("export/status")).status_code == 200


def test_deactivating_in_the_admin_says_what_happened_to_the_users_clients(tenant, admin_client):
    client_id, secret = client_credentials(tenant, "carol", name="nightly")
    fetch_token(tenant, client_id, secret)
    fetch_token(tenant, client_id, secret)
    user = get_user_model().objects.get(username="carol")
    url = reverse("admin:auth_user_change", args=[user.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update({"is_active": "", "last_login_0": "", "last_login_1": "", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"})
    data.pop("groups", None)
    data.pop("user_permissions", None)
    response = admin_client.post(url, data, follow=True)
    text = " ".join(str(message) for message in response.context["messages"])
    assert "nightly" in text and "acme" in text, text
    assert "2 bearer token(s) revoked" in text, text
    assert not AccessToken.objects.filter(application__client_id=client_id).exists()


def test_oauth_client_list_shows_clients_whose_user_can_no_longer_act(tenant, admin_client):
    client_credentials(tenant, "dave", name="dave-ci")
    deactivate(tenant, "dave")
    html = admin_client.get(reverse("admin:tenants_oauthclient_changelist")).content.decode()
    assert "dave-ci" in html
    assert "refused: user dave is inactive" in html


def test_deactivated_supervisor_loses_the_admin_on_the_next_request(tenant):
    user = member_add(tenant=tenant, username="sue", supervisor=True).user
    session = Client()
    session.force_login(user)
    assert session.get(reverse("admin:exports_exportjob_changelist")).status_code == 200
    user.is_active = False
    user.save()
    assert session.get(reverse("admin:exports_exportjob_changelist")).status_code == 302  # to the login page


# --- hole 3: the realm in the URL and the client that authenticates are the same ------------


def test_lowercase_basic_header_cannot_smuggle_another_tenants_client(tenant, other_tenant):
    """django-oauth-toolkit reads only `Basic` (that case): a lowercase header naming this realm's
    client must not pass the realm check while the form authenticates another tenant's client."""
    own_id, _ = client_credentials(tenant, "robot")
    foreign_id, foreign_secret = client_credentials(other_tenant, "spy")
    form = {"grant_type": "client_credentials", "client_id": foreign_id, "client_secret": foreign_secret}
    response = token_request(tenant.slug, form, authorization=basic(own_id, "anything", scheme="basic"))
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"
    assert not AccessToken.objects.exists()


def test_failed_basic_auth_cannot_fall_back_to_another_tenants_client_in_the_form(tenant, other_tenant):
    """The toolkit tries the form when HTTP Basic fails: a wrong secret for this realm's client in
    the header must not let another tenant's client in the form through."""
    own_id, _ = client_credentials(tenant, "robot")
    foreign_id, foreign_secret = client_credentials(other_tenant, "spy")
    form = {"grant_type": "client_credentials", "client_id": foreign_id, "client_secret": foreign_secret}
    response = token_request(tenant.slug, form, authorization=basic(own_id, "wrong-secret"))
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"
    assert not AccessToken.objects.exists()


def test_basic_header_of_this_realms_client_still_works(tenant):
    client_id, secret = client_credentials(tenant, "robot")
    response = token_request(tenant.slug, {"grant_type": "client_credentials"}, authorization=basic(client_id, secret))
    assert response.status_code == 200, response.content
    assert AccessToken.objects.get().application.client_id == client_id


# --- hole 4: django-rq's pages and statistics are the installation's, for superusers only -----

def django_rq_paths() -> list[str]:
    """Every URL django-rq adds to the admin, its parameters filled in."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and "django_rq" in prefix + str(pattern.pattern):
                yield prefix + str(pattern.pattern)

    paths = set()
    for raw in walk(get_resolver().url_patterns, "/"):
        path = re.sub(r"\(\?P<\w+>[^)]*\)\??", "token", raw).replace("^", "").replace("$", "").replace("/?", "/")
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "0" if "index" in m[1] else "x", path)
        paths.add(path)
    return sorted(paths)


def test_supervisor_reaches_no_django_rq_url(tenant):
    user = member_add(tenant=tenant, username="sue", supervisor=True).user
    session = Client()
    session.force_login(user)
    paths = django_rq_paths()
    assert any("stats.json" in path for path in paths) and len(paths) > 20
    for path in paths:
        response = session.get(path)
        assert response.status_code in (401, 403, 404), (path, response.status_code, response.content[:200])
        assert b"queues" not in response.content, path


def test_superuser_reads_django_rq_statistics(admin_client):
    response = admin_client.get(reverse("admin:django_rq_home_json"))
    assert response.status_code == 200
    assert "queues" in response.json()


# --- hole 5: an Idempotency-Key is the credential's own -------------------------------------


def post_export(client, version, key: str, correlation_id: str):
    return client.post(
        client.api("export"),
        {"inputs": {"version_ids": [str(version.version_id)]}, "correlation_id": correlation_id},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def test_colleagues_reusing_an_idempotency_key_get_jobs_of_their_own(tenant):
    tenant.export_api_job_limit = 10
    tenant.save()
    version = ServiceVersionFactory(service__folder__tenant=tenant)
    alice = SparkClient(tenant.slug, make_api_key(tenant, name="alice"))
    bob = SparkClient(tenant.slug, make_api_key(tenant, name="bob"))
    carol = SparkClient(tenant.slug, make_api_key(tenant, name="carol"))

    first = post_export(alice, version, "deploy-42", "alice")
    assert first.status_code == 200, first.json()
    other_body = post_export(bob, version, "deploy-42", "bob")  # no 422 naming alice's job
    assert other_body.status_code == 200, other_body.json()
    same_body = post_export(carol, version, "deploy-42", "alice")  # not alice's job either
    assert same_body.status_code == 200, same_body.json()

    ids = {first.json()["id"], other_body.json()["id"], same_body.json()["id"]}
    assert len(ids) == 3
    assert post_export(alice, version, "deploy-42", "alice").json()["id"] == first.json()["id"]
    assert post_export(bob, version, "deploy-42", "other").json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert ExportJob.objects.count() == 3


def test_an_oauth_client_and_an_api_key_do_not_share_idempotency_keys(tenant):
    tenant.export_api_job_limit = 10
    tenant.save()
    version = ServiceVersionFactory(service__folder__tenant=tenant)
    keyed = SparkClient(tenant.slug, make_api_key(tenant, name="ci"))
    client_id, secret = client_credentials(tenant, "robot")
    token = bearer(tenant, fetch_token(tenant, client_id, secret))
    by_key = post_export(keyed, version, "k", "same")
    by_token = post_export(token, version, "k", "same")
    assert by_key.status_code == by_token.status_code == 200
    assert by_key.json()["id"] != by_token.json()["id"]
