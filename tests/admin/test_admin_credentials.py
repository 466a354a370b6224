"""API keys, OAuth clients and members: created through the services, secrets shown once,
revoked from the list or from their own page."""
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application

from tenants.models import ApiKey, Group, Membership, OAuthClient
from tenants.selectors import api_key_get_by_secret
from tenants.services import apikey_create, apikey_revoke, member_add, oauth_client_create

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_api_key_secret_is_shown_once(admin_client_a, tenant):
    response = admin_client_a.post(
        reverse("admin:tenants_apikey_add"),
        {"tenant": tenant.pk, "name": "deploy", "permissions": ["Spark.Exports.json"], "supervisor": "on"},
        follow=True,
    )
    api_key = ApiKey.objects.get(name="deploy")
    assert (api_key.permissions, api_key.is_supervisor) == (["Spark.Exports.json"], True)
    page = response.content.decode()
    secret = page.split("shown only this once: ")[1].split("<")[0].strip()
    assert api_key_get_by_secret(secret) == api_key
    assert any(secret in text for text in messages_of(response))

    again = admin_client_a.get(reverse("admin:tenants_apikey_change", args=[api_key.pk])).content.decode()
    assert secret not in again and secret.split(".")[1] not in again
    assert api_key.prefix in again


def test_revoke_api_keys(admin_client_a, tenant):
    api_key, secret = apikey_create(tenant=tenant, name="old")
    response = admin_client_a.post(
        reverse("admin:tenants_apikey_changelist"), {"action": "revoke_keys", "_selected_action": [api_key.pk]}
    )
    assert "Revoked 1 API key(s)." in messages_of(response)
    assert api_key_get_by_secret(secret) is None
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_oauth_client_created_then_revoked(admin_client_a, tenant):
    member_add(tenant=tenant, username="robot@acme.test")
    response = admin_client_a.post(
        reverse("admin:tenants_oauthclient_add"),
        {"tenant": tenant.pk, "name": "pipeline", "username": "robot@acme.test"},
        follow=True,
    )
    client = OAuthClient.objects.get()
    text = " ".join(messages_of(response))
    assert client.application.client_id in text
    secret = text.split("shown only this once: ")[1].strip()
    assert Application.objects.get().client_secret != secret  # stored hashed

    page = admin_client_a.get(reverse("admin:tenants_oauthclient_change", args=[client.pk])).content.decode()
    assert secret not in page

    admin_client_a.post(
        reverse("admin:tenants_oauthclient_changelist"), {"action": "revoke_clients", "_selected_action": [client.pk]}
    )
    assert not Application.objects.exists() and not OAuthClient.objects.exists()


def test_oauth_client_for_a_non_member_is_a_form_error(admin_client_a, tenant):
    response = admin_client_a.post(
        reverse("admin:tenants_oauthclient_add"), {"tenant": tenant.pk, "name": "x", "username": "nobody"}
    )
    assert "is not a member of tenant 'acme'" in response.context["form"].non_field_errors()[0]
    assert not Application.objects.exists()


def test_add_member_and_supervisor(admin_client_a, tenant):
    url = reverse("admin:tenants_membership_add")
    admin_client_a.post(url, {"tenant": tenant.pk, "username": "new@acme.test", "password": "a-long-password"})
    admin_client_a.post(url, {"tenant": tenant.pk, "username": "boss@acme.test", "supervisor": "on"})
    member = Membership.objects.get(user__username="new@acme.test")
    assert member.group == Group.USER and not member.user.is_staff
    assert member.user.check_password("a-long-password")
    boss = Membership.objects.get(user__username="boss@acme.test")
    assert boss.group == Group.SUPERVISOR and boss.user.is_staff


def test_password_of_an_existing_user_cannot_be_set(admin_client_a, tenant, admin_user):
    response = admin_client_a.post(
        reverse("admin:tenants_membership_add"),
        {"tenant": tenant.pk, "username": admin_user.username, "password": "taken-over!"},
    )
    assert "password" in response.context["form"].errors
    admin_user.refresh_from_db()
    assert not admin_user.check_password("taken-over!")
    assert not Membership.objects.filter(user=admin_user).exists()
    assert get_user_model().objects.filter(username=admin_user.username).count() == 1


# --- revoke buttons on the detail pages ---------------------------------------------------


def key_url(api_key, action="change") -> str:
    return reverse(f"admin:tenants_apikey_{action}", args=[api_key.pk])


def client_url(client, action="change") -> str:
    return reverse(f"admin:tenants_oauthclient_{action}", args=[client.pk])


def test_revoke_button_on_an_api_key_page(admin_client_a, tenant):
    api_key, secret = apikey_create(tenant=tenant, name="deploy")
    page = admin_client_a.get(key_url(api_key)).content.decode()
    assert f'<form method="post" action="{key_url(api_key, "revoke")}">' in page and 'id="apikey-revoke"' in page

    response = admin_client_a.post(key_url(api_key, "revoke"))
    assert response.status_code == 302 and response["Location"] == key_url(api_key)
    assert "API key 'deploy' revoked: it is refused from now on." in messages_of(response)
    assert api_key_get_by_secret(secret) is None
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert 'id="apikey-revoke"' not in admin_client_a.get(key_url(api_key)).content.decode()  # nothing left to revoke
    assert LogEntry.objects.get(object_id=str(api_key.pk)).change_message == "Revoked"


def test_revoking_a_revoked_key_changes_nothing(admin_client_a, tenant):
    api_key, _ = apikey_create(tenant=tenant, name="old")
    apikey_revoke(api_key=api_key)
    revoked_at = ApiKey.objects.get(pk=api_key.pk).revoked_at
    response = admin_client_a.post(key_url(api_key, "revoke"))
    assert "API key 'old' was already revoked." in messages_of(response)
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at == revoked_at


def test_revoke_buttons_need_post(admin_client_a, tenant):
    api_key, secret = apikey_create(tenant=tenant, name="deploy")
    client = robot_client(tenant)
    assert admin_client_a.get(key_url(api_key, "revoke")).status_code == 405
    assert admin_client_a.get(client_url(client, "revoke")).status_code == 405
    assert api_key_get_by_secret(secret) == api_key and OAuthClient.objects.filter(pk=client.pk).exists()


def test_revoke_buttons_on_another_tenants_credentials_are_404(admin_client_a, other_tenant):
    api_key, secret = apikey_create(tenant=other_tenant, name="theirs")
    client = robot_client(other_tenant)
    assert admin_client_a.post(key_url(api_key, "revoke")).status_code == 404
    assert admin_client_a.post(client_url(client, "revoke")).status_code == 404
    assert api_key_get_by_secret(secret) == api_key
    assert OAuthClient.objects.filter(pk=client.pk).exists()


def robot_client(tenant) -> OAuthClient:
    member_add(tenant=tenant, username=f"robot@{tenant.slug}.test")
    client, _, _ = oauth_client_create(tenant=tenant, name="pipeline", username=f"robot@{tenant.slug}.test")
    return client


def test_revoke_button_on_an_oauth_client_page_deletes_it_and_its_tokens(admin_client_a, tenant):
    client = robot_client(tenant)
    AccessToken.objects.create(application=client.application, token="bearer-1", expires=timezone.now() + timedelta(hours=1))
    page = admin_client_a.get(client_url(client)).content.decode()
    assert f'<form method="post" action="{client_url(client, "revoke")}">' in page and 'id="oauthclient-revoke"' in page

    response = admin_client_a.post(client_url(client, "revoke"))
    assert response.status_code == 302 and response["Location"] == reverse("admin:tenants_oauthclient_changelist")
    assert "OAuth client 'pipeline' revoked: it and its bearer tokens are deleted." in messages_of(response)
    assert not OAuthClient.objects.exists() and not Application.objects.exists() and not AccessToken.objects.exists()


def test_api_key_list_shows_last_used_and_revoked_in_words(admin_client_a, tenant):
    used, _ = apikey_create(tenant=tenant, name="used", permissions=["Spark.Exports.json", "Spark.AllEncompassingProxy.json"])
    ApiKey.objects.filter(pk=used.pk).update(last_used_at=timezone.now())
    apikey_revoke(api_key=apikey_create(tenant=tenant, name="gone")[0])
    response = admin_client_a.get(reverse("admin:tenants_apikey_changelist"))
    assert response.context["cl"].list_display == [
        "action_checkbox", "name", "prefix", "permission_list", "supervisor", "last_used", "revoked"
    ]
    html = response.content.decode()
    assert "exports, all" in html
    assert f"{timezone.localtime(ApiKey.objects.get(name='used').last_used_at):%Y-%m-%d %H:%M}" in html
    assert f"{timezone.localtime(ApiKey.objects.get(name='gone').revoked_at):%Y-%m-%d %H:%M}" in html

    for state, names in (("revoked", {"gone"}), ("active", {"used"})):
        keys = admin_client_a.get(reverse("admin:tenants_apikey_changelist"), {"state": state}).context["cl"].result_list
        assert {key.name for key in keys} == names
