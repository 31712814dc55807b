from django.db import migrations, models


def lease_from_updated_at(apps, schema_editor):
    """A build being staged keeps the lease it had: until now `updated_at` was the lease."""
    Build = apps.get_model("releases", "Build")
    Build.objects.filter(status="staging").update(lease_renewed_at=models.F("updated_at"))


class Migration(migrations.Migration):
    dependencies = [("releases", "0005_notifications_and_cdn_purges")]

    operations = [
        migrations.AddField(
            model_name="build",
            name="lease_holder",
            field=models.PositiveIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="build",
            name="lease_renewed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(lease_from_updated_at, migrations.RunPython.noop),
    ]
