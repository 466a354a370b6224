"""When a user may no longer act, the bearer tokens of the OAuth clients acting as them go.

Every request checks the user anyway (tenants/credentials.py); deleting the tokens as well
means that turning the user back on, or adding them again, does not revive old tokens.
Receivers of the model signals, so that the admin, services and code all take this path.
"""
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from oauth2_provider.models import AccessToken, RefreshToken

from tenants.models import Membership, OAuthClient


def oauth_tokens_revoke(*, user, tenant=None) -> int:
    """Delete the tokens of the OAuth clients acting as `user` (in `tenant`, or in every tenant)."""
    clients = OAuthClient.objects.filter(user=user)
    if tenant is not None:
        clients = clients.filter(tenant=tenant)
    applications = clients.values("application_id")
    RefreshToken.objects.filter(application__in=applications).delete()
    deleted, _ = AccessToken.objects.filter(application__in=applications).delete()
    return deleted


def _user_saved(sender, instance, **kwargs):
    if not instance.is_active:
        oauth_tokens_revoke(user=instance)


def _membership_deleted(sender, instance, **kwargs):
    oauth_tokens_revoke(user=instance.user_id, tenant=instance.tenant_id)


def connect() -> None:
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="revoke-inactive-user-tokens")
    post_delete.connect(_membership_deleted, sender=Membership, dispatch_uid="revoke-former-member-tokens")
