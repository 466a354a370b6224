# The table Django made for ExportJob.versions becomes a model of its own (ExportJobVersion), so
# its writes go through SnapshotQuerySet. Only the state changes: the table, its columns and
# constraints stay as they are (no lock, nothing rewritten).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('exports', '0007_credential_of_existing_jobs'),
        ('tenants', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ExportJobVersion',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('exportjob', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='exports.exportjob')),
                        ('serviceversion', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='tenants.serviceversion')),
                    ],
                    options={
                        'db_table': 'exports_exportjob_versions',
                        'unique_together': {('exportjob', 'serviceversion')},
                    },
                ),
                migrations.AlterField(
                    model_name='exportjob',
                    name='versions',
                    field=models.ManyToManyField(blank=True, related_name='export_jobs', through='exports.ExportJobVersion', to='tenants.serviceversion'),
                ),
            ],
            database_operations=[],
        ),
    ]
