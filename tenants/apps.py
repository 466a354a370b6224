from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from tenants import revocation, snapshot_scopes

        snapshot_scopes.connect()
        revocation.connect()
