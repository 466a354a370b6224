"""django-rq's queue dashboard, for superusers only."""

from functools import wraps

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django_rq.admin import QueueAdmin
from django_rq.models import Dashboard as RQDashboard


def _superuser_only(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_superuser:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


class OperatorQueueAdmin(QueueAdmin):
    """django-rq's admin dashboard for superusers only: it lists and acts on every tenant's jobs."""

    token_views = {"django_rq_home_json", "django_rq_metrics"}  # their own API-token auth

    def get_urls(self):
        patterns = super().get_urls()
        for pattern in patterns:
            if pattern.name not in self.token_views:
                pattern.callback = _superuser_only(pattern.callback)
        return patterns


if admin.site.is_registered(RQDashboard):
    admin.site.unregister(RQDashboard)
    admin.site.register(RQDashboard, OperatorQueueAdmin)
