"""Halts of staged rollouts, their review records (release requests of kind `halt`), and the
`halt_rollout` permission (given to release managers by 0008's roles_sync)."""

import django.db.models.deletion
from django.db import migrations, models


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
    ]
