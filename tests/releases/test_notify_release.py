"""One release through the admin backend, told to people on every channel (README: Notifications).

A signed ToDesktop webhook → staging from the fake ToDesktop origin → awaiting review in the
admin → approved there → promoted → live. The receivers are real HTTP servers on loopback (a
Slack-compatible catcher and a webhook catcher) and Django's locmem mail backend.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.core import mail

from releases.models import AuditEvent, DeliveryStatus, Notification, ReleaseRequest, ReleaseState
from tests.fakes.todesktop_origin import FakeBuild, start_origin
from tests.notify_support import BASE_URL, SLACK_TOKEN_PATH, group_member, verified
from tests.webhook_support import APP_ID, BUILD_ID, payload, post

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fs_buckets")]

EVENTS = ["release.awaiting_review", "release.approved", "release.live"]


@pytest.fixture
def origin(webhook_settings):
    server = start_origin(FakeBuild(app_id=APP_ID, build_id=BUILD_ID))
    webhook_settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
    webhook_settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    yield server
    server.stop()


@pytest.fixture
def release_through_the_admin(client, origin, django_capture_on_commit_callbacks):
    """Webhook → staged → approved in the admin by a release manager → live."""

    def run() -> ReleaseRequest:
        ada = group_member("ada", "ada@example.com")
        User.objects.filter(pk=ada.pk).update(is_staff=True)
        body = payload(appVersion="1.2.0", releaseInfo={"latestReleaseBuildId": BUILD_ID})
        with django_capture_on_commit_callbacks(execute=True):
            answer = post(client, body)
        release = ReleaseRequest.objects.get(pk=answer.json()["release_id"])
        assert release.state == ReleaseState.IN_REVIEW
        client.force_login(ada)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                "/admin/releases/releaserequest/",
                {"action": "approve_releases", "_selected_action": [release.pk]},
            )
        release.refresh_from_db()
        assert release.state == ReleaseState.LIVE
        return release

    return run


def test_one_release_notifies_once_per_event_and_channel_with_verified_signatures(
    receivers, release_through_the_admin
):
    group_member("bob", "bob@example.com")
    User.objects.filter(pk=group_member("gone", "gone@example.com").pk).update(is_active=False)

    release = release_through_the_admin()

    hooks = [verified(caught) for caught in receivers.webhook.requests]
    assert Counter(hook["event"] for hook in hooks) == Counter(EVENTS)
    admin_link = f"{BASE_URL}/admin/releases/releaserequest/{release.pk}/change/"
    for hook in hooks:
        event = AuditEvent.objects.get(sequence=hook["audit"]["sequence"])
        assert (hook["build"], hook["version"], hook["url"]) == (BUILD_ID, "1.2.0", admin_link)
        assert datetime.fromisoformat(hook["at"]) == event.created_at
        assert hook["release"] == {"id": release.pk, "kind": "release"}
    [waiting] = [hook for hook in hooks if hook["event"] == "release.awaiting_review"]
    assert waiting["review"] == {
        "backend": "admin",
        "url": admin_link,
        "required_approvals": 1,
        "deciders": ["ada", "bob"],  # the release managers; inactive users are left out
    }
    deliveries = [caught.headers["x-selfhosted-delivery"] for caught in receivers.webhook.requests]
    assert len(set(deliveries)) == 3

    slack = receivers.slack.requests
    assert len(slack) == 3 and {caught.path for caught in slack} == {SLACK_TOKEN_PATH}
    texts = sorted(caught.json()["text"] for caught in slack)
    assert [text.split("*")[1].split(":")[0] for text in texts] == [
        "Release approved",
        "Release awaiting review",
        "Release live",
    ]
    assert all(f"<{admin_link}|Open in the admin>" in text for text in texts)
    assert any("Who must decide: 1 approval(s) from ada, bob" in text for text in texts)

    assert len(mail.outbox) == 3
    assert all(
        sorted(message.to) == ["ada@example.com", "bob@example.com"] for message in mail.outbox
    )
    subjects = sorted(message.subject for message in mail.outbox)
    assert subjects[1] == f"[Desktop releases] Release awaiting review: build {BUILD_ID} v1.2.0"
    assert all(admin_link in message.body for message in mail.outbox)

    rows = Notification.objects.all()
    assert Counter((row.kind, row.channel) for row in rows) == Counter(
        (kind, channel) for kind in EVENTS for channel in ("email", "slack", "webhook")
    )
    assert {(row.status, row.attempts) for row in rows} == {(DeliveryStatus.DELIVERED, 1)}
