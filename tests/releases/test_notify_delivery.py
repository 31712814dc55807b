"""Which audit events notify, what each channel receives, and how deliveries fail (README:
Notifications). Receivers are HTTP catchers on loopback and Django's locmem mail backend."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.db import transaction
from django.utils import timezone

from releases import tasks
from releases.errors import TransientError
from releases.models import (
    AuditEvent,
    Build,
    DeliveryStatus,
    Notification,
    ReleaseRequest,
    ReleaseState,
)
from releases.services.audit import audit_record
from releases.services.notifications import (
    NOTIFICATION_KINDS,
    notification_deliver,
    notification_kind,
    notifications_sweep,
)
from releases.services.notifications.payload import notification_payload
from tests.fakes.http_catcher import start_catcher
from tests.fakes.s3_server import free_port
from tests.notify_support import (
    BASE_URL,
    SLACK_TOKEN_PATH,
    group_member,
    queued_task,
    verified,
    work_queued,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("audit_kind", "notified"),
    [
        ("review.awaiting_approval", "release.awaiting_review"),
        ("review.pr_opened", "release.awaiting_review"),
        ("review.pr_found", "release.awaiting_review"),
        ("review.accepted", "release.approved"),
        ("github.pr_merged", "release.approved"),
        ("review.rejected", "release.rejected"),
        ("github.pr_closed", "release.rejected"),
        ("release.live", "release.live"),
        ("rollback.awaiting_approval", "rollback.opened"),
        ("rollback.opened", "rollback.opened"),
        ("staging.failed", "staging.failed"),
        ("staging.queue_failed", "staging.failed"),
        ("review.failed", "staging.failed"),
        ("promotion.failed", "promotion.failed"),
        # kinds other changes emit: the periodic chain check, login throttling, rollouts, and
        # promotion's checks of the desired state and of the reviewed head
        ("promotion.desired_state_invalid", "promotion.failed"),
        ("promotion.name_refused", "promotion.failed"),
        ("promotion.overwrite_refused", "promotion.failed"),
        ("promotion.unreviewed", "promotion.failed"),
        ("github.pr_merged_unreviewed", "promotion.failed"),
        ("promotion.checksum_refused", "promotion.failed"),  # a refusal added later
        ("promotion.unreviewed_commits", "promotion.failed"),
        ("audit.chain_broken", "audit.chain_broken"),
        ("auth.locked_out", "login.locked_out"),
        ("rollout.halted", "rollout.halted"),
        # the rest notify nobody
        ("review.approved", None),  # one approval of several: the release still waits
        ("github.review_approved", None),
        ("staging.file_staged", None),
        ("promotion.succeeded", None),
        ("reconcile.repaired", None),
        ("cdn.purge_failed", None),
        ("promotion.desired_state_restored", None),
        ("github.pr_merge_covered", None),
        ("release.withdrawn", None),
        ("webhook.received", None),
    ],
)
def test_each_audit_kind_maps_to_its_notification(audit_kind, notified):
    assert notification_kind(audit_kind) == notified
    assert notified is None or notified in NOTIFICATION_KINDS


def _build(build_id: str = "nb1", version: str = "2.0.0") -> Build:
    return Build.objects.create(build_id=build_id, app_id="app", version=version)


def _notify(django_capture_on_commit_callbacks, **event) -> AuditEvent:
    """Record an event in a step's transaction, then let the worker run what it queued."""
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            return audit_record(**event)


def test_an_event_that_needs_nobody_queues_nothing(receivers, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        audit_record(kind="staging.file_staged", message="x", build=_build())
    assert queued == [] and not Notification.objects.exists()


def test_a_step_that_rolls_back_notifies_nobody(receivers, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as queued:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                audit_record(kind="staging.failed", message="disk full", build=_build())
                raise RuntimeError("the step failed after recording")

    assert queued == [] and not AuditEvent.objects.exists()
    assert not Notification.objects.exists() and receivers.webhook.requests == []


def test_a_broker_outage_never_fails_the_step_and_the_sweep_sends_it_later(
    client, receivers, broker_down, django_capture_on_commit_callbacks
):
    release = ReleaseRequest.objects.create(build=_build(), state=ReleaseState.IN_REVIEW)
    ada = group_member("ada")
    User.objects.filter(pk=ada.pk).update(is_staff=True)
    client.force_login(ada)

    with django_capture_on_commit_callbacks(execute=True) as queued:
        answer = client.post(
            f"/admin/releases/releaserequest/{release.pk}/decide/",
            {"decision": "reject", "comment": "not this one", "confirm": "yes"},
        )

    assert answer.status_code == 302
    release.refresh_from_db()
    assert release.state == ReleaseState.REJECTED  # the step stands
    assert [queued_task(c) for c in queued] == ["releases.tasks.notify_event"]
    assert not Notification.objects.exists()  # the message never reached a worker

    events, lost = notifications_sweep(now=timezone.now() + timedelta(minutes=2))
    assert lost == [] and events == [AuditEvent.objects.get(kind="review.rejected").pk]


def test_the_sweep_leaves_events_already_handled_and_notices_lost_deliveries(
    receivers, django_capture_on_commit_callbacks
):
    group_member("ada")
    event = _notify(django_capture_on_commit_callbacks, kind="staging.failed", message="x")
    assert Notification.objects.filter(status=DeliveryStatus.DELIVERED).count() == 3
    row = Notification.objects.get(channel="slack")
    Notification.objects.filter(pk=row.pk).update(status=DeliveryStatus.PENDING)

    soon = notifications_sweep(now=timezone.now() + timedelta(minutes=2))
    later = notifications_sweep(now=timezone.now() + timedelta(minutes=20))

    assert soon == ([], []) and later == ([], [row.pk])
    assert event.notifications.count() == 3


def test_a_failure_reason_cannot_form_links_or_mentions_in_slack(
    receivers, django_capture_on_commit_callbacks
):
    reason = "manifest names <https://evil.example/approve|Approve here> & <!channel>"
    _notify(
        django_capture_on_commit_callbacks, kind="staging.failed", message=reason, build=_build()
    )

    [caught] = receivers.slack.requests
    text = caught.json()["text"]
    assert (
        "manifest names &lt;https://evil.example/approve|Approve here&gt; &amp; &lt;!channel&gt;"
        in text
    )
    assert "<https://evil.example" not in text and "<!channel>" not in text
    assert f"<{BASE_URL}/admin/releases/build/" in text  # our own link stays a link


def test_a_line_break_in_a_version_never_reaches_the_mail_headers(
    receivers, django_capture_on_commit_callbacks
):
    group_member("ada", "ada@example.com")
    build = _build(version="1.0.0\r\nBcc: everyone@example.com")
    _notify(django_capture_on_commit_callbacks, kind="staging.failed", message="x", build=build)

    [message] = mail.outbox
    assert "\n" not in message.subject and "\r" not in message.subject
    sent = message_from_bytes(message.message().as_bytes())
    assert sent["Bcc"] is None and sent["To"] == "ada@example.com"
    assert "Bcc: everyone@example.com" in " ".join(sent["Subject"].split())  # text, one header


def test_the_webhook_carries_the_events_facts_signed(receivers, django_capture_on_commit_callbacks):
    event = _notify(
        django_capture_on_commit_callbacks,
        kind="auth.locked_out",
        message="ada locked out after 5 failed logins from 203.0.113.9",
        actor="ada",
    )

    [caught] = receivers.webhook.requests
    body = verified(caught)
    assert caught.headers["x-selfhosted-event"] == "login.locked_out"
    assert caught.headers["content-type"] == "application/json"
    assert body["event"] == "login.locked_out" and body["build"] is None
    assert body["url"] == f"{BASE_URL}/admin/releases/auditevent/{event.pk}/change/"
    assert body["audit"] == {"sequence": event.sequence, "kind": "auth.locked_out"}
    assert body["actor"] == "ada" and body["at"] == event.created_at.isoformat()
    assert abs(body["timestamp"] - int(timezone.now().timestamp())) < 60


def test_a_github_review_names_the_pull_request_as_the_place_to_decide(
    receivers, django_capture_on_commit_callbacks
):
    release = ReleaseRequest.objects.create(
        build=_build(), pr_number=7, pr_url="https://github.com/acme/releases/pull/7"
    )
    _notify(
        django_capture_on_commit_callbacks, kind="review.pr_opened", message="x", release=release
    )

    body = verified(receivers.webhook.requests[0])
    assert body["review"] == {
        "backend": "github",
        "url": "https://github.com/acme/releases/pull/7",
        "deciders": "the pull request's reviewers",
    }
    assert body["url"] == f"{BASE_URL}/admin/releases/releaserequest/{release.pk}/change/"


def test_a_receiver_that_redirects_is_not_followed_and_fails_at_once(
    settings, receivers, django_capture_on_commit_callbacks
):
    elsewhere = start_catcher()
    receivers.webhook.redirect_to(f"{elsewhere.url}/steal")
    try:
        _notify(django_capture_on_commit_callbacks, kind="staging.failed", message="x")
    finally:
        elsewhere.stop()

    assert elsewhere.requests == []  # the signed body went nowhere else
    row = Notification.objects.get(channel="webhook")
    assert (row.status, row.attempts, row.response_status) == (DeliveryStatus.FAILED, 1, 302)
    assert row.last_error == "HTTP 302: redirects are not followed"


def test_a_4xx_answer_fails_at_once_without_retries(receivers, django_capture_on_commit_callbacks):
    receivers.slack.fail(410)  # Slack: the webhook was revoked

    _notify(django_capture_on_commit_callbacks, kind="promotion.failed", message="x")

    row = Notification.objects.get(channel="slack")
    assert (row.status, row.attempts, row.response_status) == (DeliveryStatus.FAILED, 1, 410)
    assert len(receivers.slack.requests) == 1


def test_a_transient_failure_is_recorded_and_raised_for_the_task_to_retry(receivers):
    build = _build()
    event = audit_record(kind="staging.failed", message="x", build=build)
    row = Notification.objects.create(event=event, kind="staging.failed", channel="webhook")
    receivers.webhook.fail(503)

    with pytest.raises(TransientError):
        notification_deliver(notification_id=row.pk)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.response_status) == ("pending", 1, 503)

    notification_deliver(notification_id=row.pk)  # the retry
    notification_deliver(notification_id=row.pk)  # a duplicate of it: nothing more is sent
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("delivered", 2, "")
    assert [c.status for c in receivers.webhook.requests] == [503, 200]


def test_an_email_group_without_addresses_fails_visibly(
    settings, receivers, django_capture_on_commit_callbacks
):
    Group.objects.create(name="mailing list")
    settings.NOTIFY_EMAIL_GROUP = "mailing list"

    _notify(django_capture_on_commit_callbacks, kind="audit.chain_broken", message="#12 edited")

    row = Notification.objects.get(channel="email")
    assert row.status == DeliveryStatus.FAILED and mail.outbox == []
    assert "no active user with an e-mail address in the group 'mailing list'" in row.last_error


def test_only_configured_channels_get_a_delivery(
    settings, receivers, django_capture_on_commit_callbacks
):
    settings.NOTIFY_SLACK_WEBHOOK_URL = ""
    settings.NOTIFY_EMAIL_GROUP = ""

    _notify(django_capture_on_commit_callbacks, kind="rollout.halted", message="halted at 25%")

    assert list(Notification.objects.values_list("channel", flat=True)) == ["webhook"]
    assert receivers.slack.requests == []


def test_a_redelivered_fan_out_adds_no_second_delivery(
    receivers, django_capture_on_commit_callbacks
):
    event = _notify(django_capture_on_commit_callbacks, kind="release.live", message="x")

    tasks.notify_event.apply(args=[event.pk])

    assert event.notifications.count() == 3 and len(receivers.webhook.requests) == 1


def test_deliveries_are_read_only_in_the_admin_and_never_show_the_channels_secrets(
    client, settings, receivers, django_capture_on_commit_callbacks
):
    receivers.slack.fail(500)  # its error is kept
    _notify(django_capture_on_commit_callbacks, kind="promotion.failed", message="x")
    reviewer = User.objects.create_user("rita", password="pw", is_staff=True)
    reviewer.groups.add(Group.objects.get(name="auditors"))
    client.force_login(reviewer)

    listing = client.get("/admin/releases/notification/").content.decode()
    pages = [
        client.get(f"/admin/releases/notification/{row.pk}/change/").content.decode()
        for row in Notification.objects.all()
    ]

    assert "promotion.failed" in listing
    for page in [listing, *pages]:
        assert "slack-secret-token" not in page and settings.NOTIFY_WEBHOOK_SECRET not in page
    row = Notification.objects.first()
    assert client.post(f"/admin/releases/notification/{row.pk}/change/", {}).status_code == 403
    assert (
        client.post(f"/admin/releases/notification/{row.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert client.get("/admin/releases/notification/add/").status_code == 403


def test_healthz_is_degraded_while_a_channels_latest_delivery_failed(
    client, receivers, django_capture_on_commit_callbacks
):
    group_member("ada")
    receivers.slack.fail(404)
    _notify(django_capture_on_commit_callbacks, kind="promotion.failed", message="x")

    degraded = client.get("/healthz")
    _notify(django_capture_on_commit_callbacks, kind="promotion.failed", message="y")
    recovered = client.get("/healthz").json()

    assert degraded.status_code == 200 and degraded.json()["status"] == "degraded"
    notice = degraded.json()["checks"]["notifications"]["degraded"]
    assert notice == "the latest notification failed on: slack"
    assert "degraded" not in recovered["checks"]["notifications"]


def test_without_the_notify_worker_settings_nothing_is_sent(django_capture_on_commit_callbacks):
    """The web process needs no channel settings: it only queues the event."""
    with django_capture_on_commit_callbacks(execute=True) as queued:
        audit_record(kind="release.live", message="x")

    assert len(queued) == 1 and work_queued(queued) == []
    assert not Notification.objects.exists()


def test_an_unreachable_slack_url_is_never_quoted_in_the_error(settings, receivers):
    """A Slack incoming-webhook URL is a credential (its path is the token), and requests quotes
    the path in its connection errors; the admin and the logs show only the rest."""
    settings.NOTIFY_SLACK_WEBHOOK_URL = f"http://127.0.0.1:{free_port()}{SLACK_TOKEN_PATH}"
    event = audit_record(kind="promotion.failed", message="x")
    payload = notification_payload(event, kind="promotion.failed")
    row = Notification.objects.create(
        event=event, kind="promotion.failed", channel="slack", payload=payload
    )

    with pytest.raises(TransientError) as raised:
        notification_deliver(notification_id=row.pk)

    row.refresh_from_db()
    assert row.last_error.startswith("cannot reach the receiver: ConnectionError")
    assert "Connection refused" in row.last_error
    for shown in (row.last_error, str(raised.value)):
        assert "slack-secret-token" not in shown and "/services/" not in shown
