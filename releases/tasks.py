"""Celery tasks: thin, idempotent, take ids, call one service (docs/processes.md).

Services queue these by name through `releases.queue` and never import this module, so the
imports below run one way: tasks → services.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from releases.errors import TransientError
from releases.models import ReleaseRequest
from releases.services.audit import audit_chain_check
from releases.services.cdn_purge import cdn_purge_attempt, cdn_purge_give_up, cdn_purge_open
from releases.services.notifications import (
    notification_deliver,
    notification_give_up,
    notifications_fan_out,
    notifications_sweep,
)
from releases.services.promotion import promotion_run
from releases.services.reconcile import reconcile_run
from releases.services.retention import staging_prune as prune
from releases.services.review import review_open as open_review
from releases.services.staging import build_stage, staging_give_up
from releases.services.staging_recovery import staging_lost
from selfhosted.broker import embedded_broker_sweep

logger = logging.getLogger(__name__)


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
        release_id = kwargs.get("release_id", args[0] if args else None)
        if release_id is not None:
            staging_give_up(release_id=release_id, reason=f"{type(exc).__name__}: {exc}")


@shared_task(base=StagingTask, name="releases.tasks.stage_build")
def stage_build(release_id: int) -> None:
    """Queue `staging`: download, verify, then open the review."""
    build_stage(release_id=release_id)


@shared_task(base=ReliableTask, name="releases.tasks.staging_recover")
def staging_recover() -> None:
    """Periodic (beat), queue `staging`: queue again the staging a dead worker took with it."""
    for release_id in staging_lost():
        stage_build.delay(release_id)


@shared_task(base=ReliableTask, name="releases.tasks.review_open")
def review_open(release_id: int) -> None:
    """Queue `staging`: (re)open the review of a staged build (admin retry)."""
    release = ReleaseRequest.objects.select_related("build").filter(pk=release_id).first()
    if release is not None:
        open_review(release=release)


@shared_task(base=ReliableTask, name="releases.tasks.promote")
def promote(reason: str, actor: str = "") -> None:
    """Queue `promotion`: bring production to the desired state."""
    promotion_run(reason=reason, actor=actor)


@shared_task(base=ReliableTask, name="releases.tasks.reconcile")
def reconcile(actor: str = "") -> None:
    """Reconcile production with the desired state: periodic (beat), or asked by `actor`."""
    reconcile_run(actor=actor)


@shared_task(base=ReliableTask, name="releases.tasks.staging_prune")
def staging_prune() -> None:
    """Periodic (beat) retention of the staging bucket; queue `staging` (its write key)."""
    prune(actor="retention (beat)")


class GivesUpTask(ReliableTask):
    """Out of retries (or an unexpected error): the service named by `give_up` records the
    failure on the row the task works on, so it is never silent."""

    give_up = None  # called as give_up(<id_argument>=<id>, reason=…)
    id_argument = ""  # the task's first argument: the id of the row

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        object_id = kwargs.get(self.id_argument, args[0] if args else None)
        if object_id is not None:
            reason = f"{type(exc).__name__}: {exc}"
            self.give_up(**{self.id_argument: object_id}, reason=reason)


class NotifyTask(GivesUpTask):
    give_up = staticmethod(notification_give_up)
    id_argument = "notification_id"


class CdnPurgeTask(GivesUpTask):
    give_up = staticmethod(cdn_purge_give_up)
    id_argument = "purge_id"


@shared_task(base=ReliableTask, name="releases.tasks.notify_event")
def notify_event(event_id: int) -> None:
    """Queue `notify`: one delivery per configured channel for an audit event."""
    for notification_id in notifications_fan_out(event_id=event_id):
        notify_deliver.delay(notification_id)


@shared_task(base=NotifyTask, name="releases.tasks.notify_deliver")
def notify_deliver(notification_id: int) -> None:
    """Queue `notify`: one attempt at one delivery (retried with backoff)."""
    notification_deliver(notification_id=notification_id)


@shared_task(base=ReliableTask, name="releases.tasks.notify_sweep")
def notify_sweep() -> None:
    """Periodic (beat): queue what the broker lost."""
    events, deliveries = notifications_sweep()
    for event_id in events:
        notify_event.delay(event_id)
    for notification_id in deliveries:
        notify_deliver.delay(notification_id)


@shared_task(base=ReliableTask, name="releases.tasks.broker_sweep")
def broker_sweep() -> None:
    """Periodic (beat), with the embedded broker only: drop the messages kombu delivered."""
    deleted = embedded_broker_sweep()
    if deleted:
        logger.info("embedded broker: %d delivered messages removed", deleted)


@shared_task(base=ReliableTask, name="releases.tasks.cdn_purge")
def cdn_purge(names: list[str], reason: str = "", actor: str = "") -> None:
    """Queue `promotion`: record a purge of these production names' public URLs, then send it."""
    purge = cdn_purge_open(names=names, reason=reason, actor=actor)
    if purge is not None:
        cdn_purge_send.delay(purge.pk)


@shared_task(base=CdnPurgeTask, name="releases.tasks.cdn_purge_send")
def cdn_purge_send(purge_id: int) -> None:
    """Queue `promotion`: one attempt at a purge (retried with backoff)."""
    cdn_purge_attempt(purge_id=purge_id)


@shared_task(base=ReliableTask, name="releases.tasks.audit_check")
def audit_check(actor: str = "") -> None:
    """Periodic (beat), or asked for in the admin: verify the audit chain, record the result."""
    audit_chain_check(actor=actor or "audit check (beat)")
