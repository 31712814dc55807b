"""Halts of staged rollouts, their review records (release requests of kind `halt`), and the
`halt_rollout` permission for release managers."""

import django.db.models.deletion
from django.contrib.auth.management import create_permissions
from django.db import migrations, models


def grant_halt(apps, schema_editor):
    # Permissions are normally created after all migrations; the group needs this one now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    managers, _ = Group.objects.get_or_create(name="release managers")
    halt = Permission.objects.filter(content_type__app_label="releases", codename="halt_rollout")
    managers.permissions.add(*halt)


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0006_lifecycle_lease"),
    ]

    operations = [
        migrations.AlterField(
            model_name="releaserequest",
            name="kind",
            field=models.CharField(
                choices=[("release", "release"), ("rollback", "rollback"), ("halt", "halt")],
                default="release",
                max_length=20,
            ),
        ),
        migrations.CreateModel(
            name="RolloutHalt",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "build_id",
                    models.CharField(db_index=True, max_length=64, verbose_name="halted build"),
                ),
                ("actor", models.CharField(max_length=255)),
                ("reason", models.TextField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("review_error", models.TextField(blank=True)),
                ("settled_at", models.DateTimeField(blank=True, null=True)),
                (
                    "release",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="halts",
                        to="releases.releaserequest",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-pk"],
                "permissions": [("halt_rollout", "Can halt a staged rollout (release managers)")],
            },
        ),
        migrations.RunPython(grant_halt, migrations.RunPython.noop),
    ]
