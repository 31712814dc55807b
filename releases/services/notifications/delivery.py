"""Queueing, fanning out and delivering notifications, each with its recorded outcome.

1. `notifications_queue` (called by `audit_record` for every event) queues an event of a
   notified kind on the `notify` queue once the step's transaction commits: a rolled-back step
   notifies nobody, and a broker failure is logged, never raised into the step.
2. `notifications_fan_out` (the `notify` worker, the only process holding the channels'
   secrets) makes one Notification row per configured channel and queues its delivery.
3. `notification_deliver` makes one attempt: delivered, failed for good (a 4xx, nobody to send
   to), or a TransientError that the task retries with exponential backoff;
   `notification_give_up` records the failure once the retries run out.
4. `notifications_sweep` (beat) catches what the broker lost: recent events that were never
   fanned out, and deliveries whose task vanished.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F, Q
from django.utils import timezone

from releases.errors import TransientError
from releases.integrations.mail import mail_send
from releases.integrations.outbound import DeliveryError
from releases.integrations.signed_webhook import webhook_post
from releases.integrations.slack import slack_post
from releases.models import AuditEvent, DeliveryStatus, Notification
from releases.queue import enqueue_after_commit
from releases.services.notifications.kinds import NOTIFIED_KINDS, event_notification_kind
from releases.services.notifications.payload import (
    mail_body,
    mail_subject,
    notification_payload,
    slack_text,
)

logger = logging.getLogger(__name__)

Channel = Notification.Channel
# The sweep looks this far back for events the broker lost, and leaves younger ones to the
# normal path; a pending delivery untouched for longer than the longest retry wait was lost.
SWEEP_WINDOW = timedelta(hours=1)
SWEEP_GRACE = timedelta(minutes=1)
LOST_AFTER = timedelta(minutes=15)


def channels_configured() -> list[str]:
    channels = []
    if settings.NOTIFY_EMAIL_GROUP:
        channels.append(Channel.EMAIL)
    if settings.NOTIFY_SLACK_WEBHOOK_URL:
        channels.append(Channel.SLACK)
    if settings.NOTIFY_WEBHOOK_URL:
        channels.append(Channel.WEBHOOK)
    return channels


def notifications_queue(*, event: AuditEvent) -> None:
    """Queue `event` for the `notify` worker after commit, when its kind needs a person."""
    if event_notification_kind(event.kind, event.data) is None:
        return
    # A broker outage is logged; the periodic sweep queues the event again.
    enqueue_after_commit("releases.tasks.notify_event", event.pk)


def notifications_fan_out(*, event_id: int) -> list[int]:
    """One Notification per configured channel for the event; returns those to deliver."""
    channels = channels_configured()
    event = AuditEvent.objects.select_related("build", "release").filter(pk=event_id).first()
    kind = event_notification_kind(event.kind, event.data) if event else None
    if not channels or kind is None:
        return []
    payload = notification_payload(event, kind=kind)
    for channel in channels:
        Notification.objects.get_or_create(
            event=event, channel=channel, defaults={"kind": kind, "payload": payload}
        )
    # Attempt 0 only: a redelivered fan-out must not queue a delivery that is already retrying.
    waiting = event.notifications.filter(status=DeliveryStatus.PENDING, attempts=0)
    return list(waiting.values_list("pk", flat=True))


def _claim(notification: Notification) -> bool:
    """Count this attempt; False when another worker took the same attempt (a duplicate task)."""
    return bool(
        Notification.objects.filter(
            pk=notification.pk, status=DeliveryStatus.PENDING, attempts=notification.attempts
        ).update(attempts=F("attempts") + 1, updated_at=timezone.now())
    )


def _finish(notification: Notification, status: str, **fields) -> None:
    Notification.objects.filter(pk=notification.pk).update(
        status=status, finished_at=timezone.now(), updated_at=timezone.now(), **fields
    )


def notification_deliver(*, notification_id: int) -> None:
    """One attempt at one delivery (idempotent: a finished delivery is left alone)."""
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is None or notification.status != DeliveryStatus.PENDING:
        return
    if not _claim(notification):
        return
    try:
        status = SENDERS[notification.channel](notification)
    except DeliveryError as exc:
        fields = {"last_error": str(exc), "response_status": exc.status}
        if exc.transient:
            Notification.objects.filter(pk=notification.pk).update(**fields)
            logger.warning("notification %s: %s; will retry", notification.pk, exc)
            raise TransientError(str(exc)) from exc
        _finish(notification, DeliveryStatus.FAILED, **fields)
        logger.error("notification %s failed: %s", notification.pk, exc)
        return
    _finish(notification, DeliveryStatus.DELIVERED, response_status=status, last_error="")


def notification_give_up(*, notification_id: int, reason: str) -> None:
    """The retries ran out (or the task broke): the delivery failed, and says why."""
    updated = Notification.objects.filter(pk=notification_id, status=DeliveryStatus.PENDING)
    if updated.update(
        status=DeliveryStatus.FAILED,
        finished_at=timezone.now(),
        updated_at=timezone.now(),
        last_error=f"gave up after retries: {reason}"[:2000],
    ):
        logger.error("notification %s gave up: %s", notification_id, reason)


def _send_email(notification: Notification) -> int | None:
    recipients = sorted(
        set(
            get_user_model()
            .objects.filter(is_active=True, groups__name=settings.NOTIFY_EMAIL_GROUP)
            .exclude(email="")
            .values_list("email", flat=True)
        )
    )
    if not recipients:
        raise DeliveryError(
            f"nobody to send to: no active user with an e-mail address in the group "
            f"{settings.NOTIFY_EMAIL_GROUP!r}",
            transient=False,
        )
    Notification.objects.filter(pk=notification.pk).update(recipients=recipients)
    payload = notification.payload
    mail_send(subject=mail_subject(payload), body=mail_body(payload), recipients=recipients)
    return None


def _send_slack(notification: Notification) -> int:
    return slack_post(url=settings.NOTIFY_SLACK_WEBHOOK_URL, text=slack_text(notification.payload))


def _send_webhook(notification: Notification) -> int:
    return webhook_post(
        url=settings.NOTIFY_WEBHOOK_URL,
        secret=settings.NOTIFY_WEBHOOK_SECRET,
        payload=notification.payload,
        delivery=str(notification.delivery_id),
    )


SENDERS = {Channel.EMAIL: _send_email, Channel.SLACK: _send_slack, Channel.WEBHOOK: _send_webhook}


def notifications_sweep(*, now: datetime | None = None) -> tuple[list[int], list[int]]:
    """(events never fanned out, deliveries whose task was lost), for the worker to queue."""
    if not channels_configured():
        return [], []
    now = now or timezone.now()
    candidates = (
        AuditEvent.objects.filter(
            Q(kind__in=NOTIFIED_KINDS)
            | Q(kind__startswith="promotion.")
            | Q(kind__contains="unreviewed"),
            created_at__range=(now - SWEEP_WINDOW, now - SWEEP_GRACE),
            notifications__isnull=True,
        )
        .order_by("sequence")
        .values_list("pk", "kind", "data")
    )
    events = [pk for pk, kind, data in candidates if event_notification_kind(kind, data)]
    lost = Notification.objects.filter(
        status=DeliveryStatus.PENDING,
        updated_at__range=(now - SWEEP_WINDOW - LOST_AFTER, now - LOST_AFTER),
    )
    return events, list(lost.values_list("pk", flat=True))


def notifications_health() -> str:
    """For /healthz: "" unless a channel's latest finished delivery failed. Only the channels are
    named: /healthz answers anyone, and the errors are in the admin."""
    failed = []
    for channel in channels_configured():
        latest = (
            Notification.objects.filter(channel=channel)
            .exclude(status=DeliveryStatus.PENDING)
            .order_by("-finished_at", "-pk")
            .values_list("status", flat=True)
            .first()
        )
        if latest == DeliveryStatus.FAILED:
            failed.append(channel)
    return f"the latest notification failed on: {', '.join(failed)}" if failed else ""
