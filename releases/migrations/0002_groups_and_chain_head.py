"""The groups (docs/audit.md) and the audit chain's head row."""

from __future__ import annotations

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = [
    "view_build",
    "view_buildfile",
    "view_releaserequest",
    "view_approval",
    "view_webhookdelivery",
    "view_auditevent",
]
MANAGE = ["retry_build", "rollback_build", "reconcile_production", "approve_release"]


def forwards(apps, schema_editor):
    # Permissions are normally created after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    reviewers, _ = Group.objects.get_or_create(name="reviewers")
    reviewers.permissions.add(*Permission.objects.filter(content_type__app_label="releases", codename__in=VIEW))
    managers, _ = Group.objects.get_or_create(name="release managers")
    managers.permissions.add(
        *Permission.objects.filter(content_type__app_label="releases", codename__in=VIEW + MANAGE)
    )
    apps.get_model("releases", "AuditChainHead").objects.get_or_create(pk=1)


def backwards(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["reviewers", "release managers"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
