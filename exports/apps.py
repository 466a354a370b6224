import logging

from django.apps import AppConfig
from django.conf import settings


class ExportsConfig(AppConfig):
    name = "exports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from exports import snapshot_scopes
        from exports.imports import admin as import_jobs_admin  # noqa: F401  registers ImportJob
        from exports.webhooks import admin as webhooks_admin  # noqa: F401  registers the webhook models

        snapshot_scopes.connect()

        if settings.EMBEDDED_QUEUE:
            logging.getLogger("sparkexport").warning(
                "REDIS_URL is not set: jobs run in-process in the web server (development "
                "mode only). Set REDIS_URL and run `manage.py rqworker exports imports webhooks --with-scheduler` in production."
            )
