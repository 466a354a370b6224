"""Signed download links: only the untouched, unexpired link of this job of this tenant downloads.

A link is `.../{tenant}/api/v4/export/{job_id}/file/{file_name}?token=<credential>:<timestamp>:<signature>`,
signed over the tenant, the job and the credential that read the status. Every alteration
answers 403 INVALID_DOWNLOAD_LINK, and so does a link whose credential was revoked; a valid
link with another file name is 404 JOB_NOT_FOUND (as with credentials); a link to a purged
package is 410 PACKAGE_EXPIRED.
"""
import time
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from exports.downloads import download_token
from exports.models import JobStatus
from tenants.credentials import KEY, credential_id
from tenants.services import apikey_revoke, member_add
from tests.security.conftest import build_world, export_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def home():
    return build_world("linkco", "linkco", job_limit=100)


@pytest.fixture
def neighbour():
    return build_world("linkother", "linkother", job_limit=100)


def file_url(world, job=None, file_name="package.zip") -> str:
    job = job or world.jobs["closed"]
    return f"/{world.tenant.slug}/api/v4/export/{job.pk}/file/{file_name}"


def signed_link(world, reader="owner") -> str:
    """The link exactly as a key (the owner's) reads it from the job's status document."""
    status = Client().get(
        f"/{world.tenant.slug}/api/v4/export/{world.jobs['closed'].pk}/status",
        HTTP_X_SYNTHETIC_KEY=world.keys[reader],
        HTTP_X_TENANT_NAME=world.tenant.slug,
    ).json()
    url = urlsplit(status["outputs"]["files"][0]["file"])
    return f"{url.path}?{url.query}"


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def owner_token(world, job) -> str:
    return download_token(world.tenant.slug, job.pk, credential_id(KEY, world.key_objects["owner"].pk))


def download(path: str, token: str, **headers):
    return Client().get(path, {"token": token}, **headers)


def assert_refused(response):
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["code"] == "INVALID_DOWNLOAD_LINK"
    assert "fresh link" in body["message"]


def test_valid_link_downloads_the_exact_bytes_without_credentials(home):
    response = Client().get(signed_link(home))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert b"".join(response.streaming_content) == home.package
    assert int(response["Content-Length"]) == len(home.package)


def test_expired_link_is_refused(home, settings):
    job = home.jobs["closed"]
    signed_at = time.time() - settings.EXPORT_DOWNLOAD_LINK_TTL - 5
    with mock.patch("django.core.signing.time.time", return_value=signed_at):
        token = owner_token(home, job)
    assert_refused(download(file_url(home), token))


def test_link_just_inside_its_lifetime_still_works(home, settings):
    signed_at = time.time() - settings.EXPORT_DOWNLOAD_LINK_TTL + 30
    with mock.patch("django.core.signing.time.time", return_value=signed_at):
        token = owner_token(home, home.jobs["closed"])
    assert download(file_url(home), token).status_code == 200


def _flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


TAMPERINGS = {
    "timestamp_changed": lambda cred, ts, sig: f"{cred}:{_flip(ts, len(ts) - 1)}:{sig}",
    "timestamp_moved_forward": lambda cred, ts, sig: f"{cred}:{ts}z:{sig}",
    "signature_first_char": lambda cred, ts, sig: f"{cred}:{ts}:{_flip(sig, 0)}",
    "signature_last_char": lambda cred, ts, sig: f"{cred}:{ts}:{_flip(sig, len(sig) - 1)}",
    "signature_truncated": lambda cred, ts, sig: f"{cred}:{ts}:{sig[:-1]}",
    "signature_extended": lambda cred, ts, sig: f"{cred}:{ts}:{sig}A",
    "credential_changed": lambda cred, ts, sig: f"{cred}0:{ts}:{sig}",
    "credential_dropped": lambda cred, ts, sig: f"{ts}:{sig}",
    "signature_only": lambda cred, ts, sig: sig,
    "timestamp_only": lambda cred, ts, sig: ts,
    "extra_part": lambda cred, ts, sig: f"{cred}:{ts}:{sig}:extra",
    "empty": lambda cred, ts, sig: "",
    "separator_only": lambda cred, ts, sig: ":",
}


@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_tampered_token_is_refused(home, tampering):
    credential, timestamp, signature = token_of(signed_link(home)).rsplit(":", 2)
    assert credential == credential_id(KEY, home.key_objects["owner"].pk)
    token = TAMPERINGS[tampering](credential, timestamp, signature)
    assert_refused(download(file_url(home), token))


def test_link_stops_working_when_the_key_that_read_it_is_revoked(home):
    link = signed_link(home)
    assert Client().get(link).status_code == 200
    apikey_revoke(api_key=home.key_objects["owner"])
    assert_refused(Client().get(link))


def test_link_stops_working_when_the_key_loses_the_export_permission(home):
    link = signed_link(home)
    key = home.key_objects["owner"]
    key.permissions = ["Spark.Imports.json"]
    key.save()
    assert_refused(Client().get(link))


def test_an_admin_link_stops_when_the_supervisor_changes_password_or_loses_the_tenant(home):
    user = member_add(tenant=home.tenant, username="sue", supervisor=True, password="first-password").user
    session = Client()
    session.force_login(user)
    job = home.jobs["closed"]
    link = session.get(f"/admin/exports/exportjob/{job.pk}/download/")["Location"]
    assert Client().get(link).status_code == 200
    user.set_password("second-password")
    user.save()
    assert_refused(Client().get(link))
    session.force_login(user)
    link = session.get(f"/admin/exports/exportjob/{job.pk}/download/")["Location"]
    assert Client().get(link).status_code == 200
    home.tenant.memberships.filter(user=user).delete()
    assert_refused(Client().get(link))


def test_link_read_by_a_supervisor_key_is_the_supervisors_own(home):
    """Another key reading the same status gets a link of its own, which outlives the owner's."""
    supervisors = signed_link(home, reader="supervisor")
    owners = signed_link(home)
    assert token_of(supervisors) != token_of(owners)
    apikey_revoke(api_key=home.key_objects["owner"])
    assert_refused(Client().get(owners))
    assert Client().get(supervisors).status_code == 200


def test_link_reused_for_another_job_of_the_same_tenant_is_refused(home):
    other = export_job(home, "closed_too", status=JobStatus.CLOSED, package=True)
    token = token_of(signed_link(home))
    assert_refused(download(file_url(home, other), token))


def test_link_reused_for_another_tenant_is_refused(home, neighbour):
    token = token_of(signed_link(home))
    # Our token on the neighbour's URL for the neighbour's job, and for our own job id.
    assert_refused(download(file_url(neighbour), token))
    assert_refused(download(f"/{neighbour.tenant.slug}/api/v4/export/{home.jobs['closed'].pk}/file/package.zip", token))
    # The neighbour's token on our URL.
    assert_refused(download(file_url(home), token_of(signed_link(neighbour))))


def test_link_with_another_file_name_is_not_found(home):
    token = token_of(signed_link(home))
    response = download(file_url(home, file_name="other.zip"), token)
    assert response.status_code == 404
    assert response.json()["code"] == "JOB_NOT_FOUND"


def test_link_to_a_purged_package_is_gone(home):
    expired = home.jobs["expired"]
    token = owner_token(home, expired)
    response = download(file_url(home, expired), token)
    assert response.status_code == 410
    assert response.json()["code"] == "PACKAGE_EXPIRED"


def test_link_to_a_job_without_a_package_is_a_conflict(home):
    running = home.jobs["in_progress"]
    response = download(file_url(home, running), owner_token(home, running))
    assert response.status_code == 409
    assert response.json()["code"] == "JOB_NOT_CLOSED"


def test_link_does_not_widen_another_callers_credentials(home):
    """With credentials the token is not consulted: another non-supervisor caller still gets 404."""
    token = token_of(signed_link(home))
    response = download(
        file_url(home), token, HTTP_X_SYNTHETIC_KEY=home.keys["second"], HTTP_X_TENANT_NAME=home.tenant.slug
    )
    assert response.status_code == 404
    assert b"linkco-owner" not in response.content


def test_link_with_credentials_of_another_tenant_is_refused(home, neighbour):
    token = token_of(signed_link(home))
    response = download(
        file_url(home), token, HTTP_X_SYNTHETIC_KEY=neighbour.keys["owner"], HTTP_X_TENANT_NAME=neighbour.tenant.slug
    )
    assert response.status_code == 403
