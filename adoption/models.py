"""Adoption counts per hour, platform and build (README: Adoption).

Written only by `adoption.services.adoption_flush`, in batches from each web process's memory.
No row holds a staging id or an address: unique installs are HyperLogLog sketches of keyed
hashes, and the key (`AdoptionSecret`) rotates and is then deleted.
"""

from __future__ import annotations

from django.db import models


class Metric(models.TextChoices):
    POLL = "poll"  # a channel manifest served (latest*.yml, td-latest*.json): `name` is empty
    FULL = "full_download", "full download"  # a file served whole: `name` is the file
    DIFFERENTIAL = "differential_download", "differential download"  # a ranged request
    LINK = "link_hit", "download-link hit"  # `/download/…`: `name` is the artifact


class AdoptionCount(models.Model):
    hour = models.DateTimeField()
    platform = models.CharField(max_length=16, blank=True)
    build_id = models.CharField(max_length=64, blank=True)
    metric = models.CharField(max_length=32, choices=Metric)
    name = models.CharField(max_length=255, blank=True)
    count = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-hour", "platform", "build_id", "metric", "name"]
        verbose_name = "adoption"
        verbose_name_plural = "adoption"
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "platform", "build_id", "metric", "name"], name="one_count_per_key"
            )
        ]
        indexes = [models.Index(fields=["build_id", "hour"], name="adoption_build_hour")]

    def __str__(self) -> str:
        return f"{self.metric} {self.build_id or '-'} {self.platform} {self.hour:%Y-%m-%d %H}h"


class AdoptionSketch(models.Model):
    """Unique installs polling for one build on one platform in one hour (a HyperLogLog)."""

    hour = models.DateTimeField()
    platform = models.CharField(max_length=16, blank=True)
    build_id = models.CharField(max_length=64)
    sketch = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "platform", "build_id"], name="one_sketch_per_key"
            )
        ]
        indexes = [models.Index(fields=["build_id", "hour"], name="sketch_build_hour")]

    def __str__(self) -> str:
        return f"installs of {self.build_id} {self.platform} {self.hour:%Y-%m-%d %H}h"


class AdoptionSecret(models.Model):
    """The key staging ids are hashed with during one rotation period; deleted afterwards."""

    period = models.PositiveIntegerField(unique=True)  # epoch days // rotation days
    secret = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"adoption secret of period {self.period}"
