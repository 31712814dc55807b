from __future__ import annotations

from django.apps import AppConfig


class AdoptionConfig(AppConfig):
    name = "adoption"
    verbose_name = "Adoption"
    default_auto_field = "django.db.models.BigAutoField"
