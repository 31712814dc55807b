"""Review coverage of GitHub merges, withdrawal of accepted releases, and the name index that
staging and promotion use to decide which build owns a file name."""

from __future__ import annotations

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

STATES = [
    ("pending", "Pending"),
    ("awaiting_review", "awaiting review"),
    ("in_review", "in review"),
    ("changes_requested", "changes requested"),
    ("approved", "Approved"),
    ("merged", "Merged"),
    ("merged_unreviewed", "merged with unreviewed commits"),
    ("live", "Live"),
    ("closed", "Closed"),
    ("rejected", "Rejected"),
    ("failed", "Failed"),
    ("withdrawn", "Withdrawn"),
]


def grant_withdraw(apps, schema_editor):
    # Permissions are normally created after all migrations; the group needs this one now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    managers, _ = Group.objects.get_or_create(name="release managers")
    managers.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="releases", codename="withdraw_release"
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0003_api_token"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="releaserequest",
            options={
                "ordering": ["-created_at"],
                "permissions": [
                    ("approve_release", "Can approve or reject a release in the admin"),
                    ("withdraw_release", "Can withdraw an accepted release that is not live"),
                ],
            },
        ),
        migrations.AddField(
            model_name="releaserequest",
            name="merged_head_sha",
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddField(
            model_name="releaserequest",
            name="reviewed_head_sha",
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AlterField(
            model_name="releaserequest",
            name="state",
            field=models.CharField(choices=STATES, default="pending", max_length=30),
        ),
        migrations.AddIndex(
            model_name="buildfile",
            index=models.Index(fields=["name"], name="buildfile_name"),
        ),
        migrations.RunPython(grant_withdraw, migrations.RunPython.noop),
    ]
