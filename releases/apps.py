from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate


def _buckets_prepare(sender, **kwargs) -> None:
    from releases.integrations.buckets import buckets_prepare

    buckets_prepare()


def _buckets_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """`manage.py check`, `migrate` and `make run` refuse STORAGES entries the buckets cannot
    honour, before any process uses them (docs/configuration.md)."""
    from releases.integrations.buckets import buckets_check

    return [checks.Error(problem, id="releases.E001") for problem in buckets_check()]


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Releases"

    def ready(self) -> None:
        # `migrate` sets up storage with the schema: a fresh filesystem install gets its bucket
        # directories there, so /healthz (which never creates anything) is green from the start.
        post_migrate.connect(_buckets_prepare, sender=self)
        checks.register(_buckets_check)
        # Imported once the models are loaded (Django's app registry):
        # logins, tokens, users, groups and permissions go into the audit trail;
        # the tasks register with Celery, where `releases.queue` finds them by name.
        from releases import signals, tasks  # noqa: F401

        signals.connect()
