"""Jobs created by an API key before Idempotency-Keys were per credential get that key as their
credential, so a retry across the upgrade still finds its job. (Which OAuth client created a
job was not recorded; those jobs keep an empty credential.)"""
from django.db import migrations
from django.db.models import F, Value
from django.db.models.functions import Cast, Concat
from django.db.models import CharField


def credential_of_key(apps, schema_editor):
    for name in ("ExportJob", "ImportJob"):
        model = apps.get_model("exports", name)
        model.objects.filter(created_by_key__isnull=False).update(
            created_by_credential=Concat(Value("key:"), Cast(F("created_by_key_id"), CharField()))
        )


class Migration(migrations.Migration):

    dependencies = [
        ("exports", "0006_idempotency_per_credential"),
    ]

    operations = [migrations.RunPython(credential_of_key, migrations.RunPython.noop)]
