"""Celery tasks: thin, idempotent, take ids, call one service (DESIGN habit 4)."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying (network, 5xx, throttling)."""


class ReliableTask(Task):
    """Default for our tasks: retry transient errors with exponential backoff and a cap.

    A database error of operation (SQLite's "database is locked", a lost PostgreSQL
    connection) is transient too: the task runs again rather than failing a build."""

    autoretry_for = (
        TransientError,
        ConnectionError,
        TimeoutError,
        OperationalError,
        InterfaceError,
    )
    retry_backoff = settings.TASK_RETRY_BACKOFF_SECONDS
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = settings.TASK_MAX_RETRIES
    acks_late = True
    reject_on_worker_lost = True


class StagingTask(ReliableTask):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        """Out of retries (or an unexpected error): make the failure visible, never silent."""
        from releases.services.staging import staging_give_up

        release_id = kwargs.get("release_id", args[0] if args else None)
        if release_id is not None:
            staging_give_up(release_id=release_id, reason=f"{type(exc).__name__}: {exc}")


@shared_task(base=StagingTask, name="releases.tasks.stage_build")
def stage_build(release_id: int) -> None:
    """Queue `staging`: download, verify, then open the review."""
    from releases.services.staging import build_stage

    build_stage(release_id=release_id)


@shared_task(base=ReliableTask, name="releases.tasks.review_open")
def review_open(release_id: int) -> None:
    """Queue `staging`: (re)open the review of a staged build (admin retry)."""
    from releases.models import ReleaseRequest
    from releases.services.review import review_open as open_review

    release = ReleaseRequest.objects.select_related("build").filter(pk=release_id).first()
    if release is not None:
        open_review(release=release)


@shared_task(base=ReliableTask, name="releases.tasks.promote")
def promote(reason: str, actor: str = "") -> None:
    """Queue `promotion`: bring production to the desired state."""
    from releases.services.promotion import promotion_run

    promotion_run(reason=reason, actor=actor)


@shared_task(base=ReliableTask, name="releases.tasks.reconcile")
def reconcile() -> None:
    """Periodic (beat) reconcile of production with the desired state."""
    from releases.services.promotion import promotion_run

    promotion_run(reason="reconcile", actor="reconcile (beat)")


@shared_task(base=ReliableTask, name="releases.tasks.staging_prune")
def staging_prune() -> None:
    """Periodic (beat) retention of the staging bucket; queue `staging` (its write key)."""
    from releases.services.retention import staging_prune as prune

    prune(actor="retention (beat)")
