"""django-rq's queue dashboard, for superusers only."""

from functools import wraps

from django.contrib import admin
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django_rq.admin import QueueAdmin
from django_rq.models import Dashboard as RQDashboard


def _superuser_only(view, *, token_auth: bool):
    """Superusers only. A view with django-rq's own API-token auth still serves a request that
    carries the token, but django-rq would also let any staff user in: it sees none."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        # Anonymous visitors go on to the admin's own login redirect (or the token check).
        if request.user.is_authenticated and not request.user.is_superuser:
            if not token_auth:
                raise PermissionDenied
            request.user = AnonymousUser()
        return view(request, *args, **kwargs)

    return wrapped


class OperatorQueueAdmin(QueueAdmin):
    """django-rq's admin dashboard for superusers only: it lists and acts on every tenant's jobs."""

    token_views = {"django_rq_home_json", "django_rq_metrics"}  # their own API-token auth

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_urls(self):
        patterns = super().get_urls()
        for pattern in patterns:
            pattern.callback = _superuser_only(pattern.callback, token_auth=pattern.name in self.token_views)
        return patterns


if admin.site.is_registered(RQDashboard):
    admin.site.unregister(RQDashboard)
    admin.site.register(RQDashboard, OperatorQueueAdmin)
