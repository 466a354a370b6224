"""API keys, OAuth clients and members: created through the services, secrets shown once."""
import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.urls import reverse
from oauth2_provider.models import Application

from tenants.models import ApiKey, Group, Membership, OAuthClient
from tenants.selectors import api_key_get_by_secret
from tenants.services import apikey_create, member_add

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
