"""`POST /github-webhook`: signatures, dedupe, and each event mirrored (docs/webhooks.md)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from pathlib import Path

import pytest

from releases.models import (
    AuditEvent,
    Build,
    BuildStatus,
    ReleaseRequest,
    ReleaseState,
    WebhookDelivery,
)
from tests.notify_support import work_queued

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parents[1] / "data" / "github"
SECRET = "gh-webhook-secret"
BRANCH = "release-build-250210vv2q75v93"


@pytest.fixture(autouse=True)
def github_settings(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    settings.GITHUB_OWNER = "acme"
    settings.GITHUB_REPO = "desktop-releases"


@pytest.fixture
def release():
    build = Build.objects.create(
        build_id="250210vv2q75v93", app_id="app1", version="1.2.0", status=BuildStatus.IN_REVIEW
    )
    return ReleaseRequest.objects.create(
        build=build,
        state=ReleaseState.IN_REVIEW,
        branch=BRANCH,
        pr_number=12,
        pr_url="https://github.com/acme/desktop-releases/pull/12",
    )


def fixture(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(client, event: str, payload: dict | bytes, *, delivery=None, signature=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "HTTP_X_GITHUB_EVENT": event,
        "HTTP_X_GITHUB_DELIVERY": delivery or str(uuid.uuid4()),
        "HTTP_X_HUB_SIGNATURE_256": sign(body) if signature is None else signature,
        "HTTP_USER_AGENT": "GitHub-Hookshot/abc123",
    }
    if signature == "":
        del headers["HTTP_X_HUB_SIGNATURE_256"]
    return client.post("/github-webhook", body, content_type="application/json", **headers)


def state_of(release: ReleaseRequest) -> str:
    release.refresh_from_db()
    return release.state


def test_it_answers_a_signed_ping(client):
    answer = deliver(client, "ping", fixture("ping.json"), delivery="d-ping")

    assert answer.status_code == 200 and answer.json()["detail"] == "pong"
    assert WebhookDelivery.objects.get(delivery_key="d-ping").event == "ping"


def test_it_rejects_a_delivery_without_signature(client, release):
    answer = deliver(
        client, "pull_request", fixture("pull_request.closed.merged.json"), signature=""
    )

    assert answer.status_code == 401 and "missing signature" in answer.json()["error"]
    assert state_of(release) == ReleaseState.IN_REVIEW
    assert not WebhookDelivery.objects.exists() and not AuditEvent.objects.exists()


def test_it_rejects_a_wrong_signature(client, release):
    payload = fixture("pull_request.closed.merged.json")
    body = json.dumps(payload).encode()

    answer = deliver(client, "pull_request", body, signature=sign(body, "another-secret"))

    assert answer.status_code == 401 and "invalid signature" in answer.json()["error"]
    assert state_of(release) == ReleaseState.IN_REVIEW and not WebhookDelivery.objects.exists()


def test_it_rejects_a_tampered_body(client, release):
    body = json.dumps(fixture("pull_request.closed.unmerged.json")).encode()
    tampered = body.replace(b'"merged": false', b'"merged": true')

    answer = deliver(client, "pull_request", tampered, signature=sign(body))

    assert answer.status_code == 401 and state_of(release) == ReleaseState.IN_REVIEW


def test_it_refuses_everything_while_the_secret_is_unset(client, settings, release):
    settings.GITHUB_WEBHOOK_SECRET = ""

    answer = deliver(client, "ping", fixture("ping.json"))

    assert answer.status_code == 503 and not WebhookDelivery.objects.exists()


@pytest.mark.parametrize(
    "body, message", [(b"not json", "not JSON"), (b"[1, 2]", "not a JSON object")]
)
def test_it_answers_400_for_a_signed_body_that_is_not_an_object(client, body, message):
    answer = deliver(client, "push", body)

    assert answer.status_code == 400 and message in answer.json()["error"]
    assert not WebhookDelivery.objects.exists()


def test_it_answers_400_without_delivery_id(client):
    body = json.dumps(fixture("ping.json")).encode()
    answer = client.post(
        "/github-webhook",
        body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT="ping",
        HTTP_X_HUB_SIGNATURE_256=sign(body),
    )

    assert answer.status_code == 400 and "X-GitHub-Delivery" in answer.json()["error"]


def test_it_answers_413_for_a_body_over_the_limit(client, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 100

    answer = deliver(client, "ping", fixture("ping.json"))

    assert answer.status_code == 413 and not WebhookDelivery.objects.exists()


def test_a_replayed_delivery_does_nothing(client, release, django_capture_on_commit_callbacks):
    payload = fixture("pull_request.closed.merged.json")
    with django_capture_on_commit_callbacks() as first:
        deliver(client, "pull_request", payload, delivery="d-merge")
    ReleaseRequest.objects.filter(pk=release.pk).update(state=ReleaseState.IN_REVIEW)
    events = AuditEvent.objects.count()

    with django_capture_on_commit_callbacks() as replay:
        answer = deliver(client, "pull_request", payload, delivery="d-merge")

    assert answer.status_code == 200 and answer.json()["duplicate"] is True
    assert len(work_queued(first)) == 1 and replay == []
    assert state_of(release) == ReleaseState.IN_REVIEW
    assert AuditEvent.objects.count() == events
    assert WebhookDelivery.objects.filter(delivery_key="d-merge").count() == 1


def test_a_signed_body_replayed_under_a_new_delivery_id_does_nothing(
    client, release, django_capture_on_commit_callbacks
):
    payload = fixture("pull_request.closed.merged.json")
    deliver(client, "pull_request", payload, delivery="d-merge")
    ReleaseRequest.objects.filter(pk=release.pk).update(state=ReleaseState.IN_REVIEW)
    events = AuditEvent.objects.count()

    with django_capture_on_commit_callbacks() as replay:
        answer = deliver(client, "pull_request", payload, delivery="forged-new-id")

    assert answer.status_code == 200 and answer.json()["duplicate"] is True
    assert replay == []
    assert state_of(release) == ReleaseState.IN_REVIEW
    assert AuditEvent.objects.count() == events
    assert not WebhookDelivery.objects.filter(delivery_key="forged-new-id").exists()


def test_an_opened_pull_request_is_in_review_with_actor_time_and_link(client, release):
    ReleaseRequest.objects.filter(pk=release.pk).update(state=ReleaseState.AWAITING_REVIEW)

    deliver(client, "pull_request", fixture("pull_request.opened.json"), delivery="d-open")

    assert state_of(release) == ReleaseState.IN_REVIEW
    event = AuditEvent.objects.get(kind="github.pr_opened")
    assert event.release_id == release.pk and event.actor == "release-bot"
    assert event.url == "https://github.com/acme/desktop-releases/pull/12"
    assert event.data["github_time"] == "2025-02-10T10:00:00Z"
    assert event.data["delivery"] == "d-open"


def test_a_merge_records_the_merger_and_queues_one_promotion(
    client, release, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        answer = deliver(client, "pull_request", fixture("pull_request.closed.merged.json"))

    assert answer.status_code == 200 and answer.json()["handled"] is True
    release.refresh_from_db()
    assert release.state == ReleaseState.MERGED and release.merged_by == "grace"
    assert release.merged_at.isoformat() == "2025-02-10T12:00:00+00:00"
    assert Build.objects.get(pk=release.build_id).status == BuildStatus.APPROVED
    assert len(work_queued(queued)) == 1
    event = AuditEvent.objects.get(kind="github.pr_merged")
    assert event.actor == "grace" and event.data["github_time"] == "2025-02-10T12:00:00Z"


def test_closed_without_merge_is_closed_and_promotes_nothing(
    client, release, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        deliver(client, "pull_request", fixture("pull_request.closed.unmerged.json"))

    assert state_of(release) == ReleaseState.CLOSED
    assert Build.objects.get(pk=release.build_id).status == BuildStatus.CLOSED
    assert work_queued(queued) == []
    assert AuditEvent.objects.get(kind="github.pr_closed").data["github_time"] == (
        "2025-02-10T12:30:00Z"
    )


def test_a_reopened_pull_request_is_back_in_review(client, release):
    deliver(client, "pull_request", fixture("pull_request.closed.unmerged.json"))

    deliver(client, "pull_request", fixture("pull_request.reopened.json"))

    assert state_of(release) == ReleaseState.IN_REVIEW
    assert Build.objects.get(pk=release.build_id).status == BuildStatus.IN_REVIEW


@pytest.mark.parametrize(
    "name, kind",
    [
        ("pull_request.edited.json", "github.pr_edited"),
        ("pull_request.synchronize.json", "github.pr_synchronize"),
    ],
)
def test_edits_and_new_commits_are_recorded_without_moving_the_state(client, release, name, kind):
    deliver(client, "pull_request", fixture(name))

    assert state_of(release) == ReleaseState.IN_REVIEW
    assert AuditEvent.objects.get(kind=kind).release_id == release.pk


def test_changes_requested_is_a_visible_state(client, release, admin_client):
    deliver(
        client,
        "pull_request_review",
        fixture("pull_request_review.submitted.changes_requested.json"),
    )

    assert state_of(release) == ReleaseState.CHANGES_REQUESTED
    event = AuditEvent.objects.get(kind="github.review_changes_requested")
    assert event.actor == "ada" and event.data["body"] == "Wrong redirection rule."
    assert "pullrequestreview-2100000001" in event.url
    page = admin_client.get("/admin/releases/releaserequest/")
    assert b"changes requested" in page.content


def test_an_approval_moves_release_and_build_to_approved(client, release):
    deliver(client, "pull_request_review", fixture("pull_request_review.submitted.approved.json"))

    assert state_of(release) == ReleaseState.APPROVED
    assert Build.objects.get(pk=release.build_id).status == BuildStatus.APPROVED


def test_a_comment_review_is_recorded_only(client, release):
    deliver(client, "pull_request_review", fixture("pull_request_review.submitted.commented.json"))

    assert state_of(release) == ReleaseState.IN_REVIEW
    assert AuditEvent.objects.get(kind="github.review_commented").actor == "ada"


def test_a_dismissed_approval_returns_to_review(client, release):
    deliver(client, "pull_request_review", fixture("pull_request_review.submitted.approved.json"))

    deliver(client, "pull_request_review", fixture("pull_request_review.dismissed.json"))

    assert state_of(release) == ReleaseState.IN_REVIEW
    assert "dismissed by grace" in AuditEvent.objects.get(kind="github.review_dismissed").message


def test_a_late_review_does_not_undo_a_merge(client, release):
    deliver(client, "pull_request", fixture("pull_request.closed.merged.json"))

    deliver(client, "pull_request_review", fixture("pull_request_review.submitted.approved.json"))

    assert state_of(release) == ReleaseState.MERGED


def test_a_pull_request_we_did_not_open_is_logged_and_ignored(client, release, caplog):
    payload = fixture("pull_request.closed.merged.json")
    payload["pull_request"]["number"] = 99
    payload["pull_request"]["head"]["ref"] = "someones-feature"

    with caplog.at_level(logging.INFO, logger="releases.services.mirror"):
        answer = deliver(client, "pull_request", payload)

    assert answer.status_code == 200 and answer.json()["handled"] is False
    assert state_of(release) == ReleaseState.IN_REVIEW and not AuditEvent.objects.exists()
    assert "not opened by us" in caplog.text


def test_a_pull_request_is_found_by_its_branch_when_its_number_was_not_recorded(client, release):
    ReleaseRequest.objects.filter(pk=release.pk).update(pr_number=None, pr_url="")

    deliver(client, "pull_request", fixture("pull_request.closed.unmerged.json"))

    release.refresh_from_db()
    assert release.state == ReleaseState.CLOSED and release.pr_number == 12


def test_events_from_another_repository_are_ignored(client, release):
    payload = fixture("pull_request.closed.merged.json")
    payload["repository"]["full_name"] = "mallory/desktop-releases"

    answer = deliver(client, "pull_request", payload)

    assert answer.json()["handled"] is False and state_of(release) == ReleaseState.IN_REVIEW


def test_a_push_of_release_files_to_the_default_branch_queues_promotion(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        answer = deliver(client, "push", fixture("push.default_branch.json"))

    assert answer.json()["handled"] is True and len(queued) == 1
    event = AuditEvent.objects.get(kind="github.push")
    assert event.actor == "grace" and event.data["files"] == ["desktop-releases.json"]
    assert event.url.startswith("https://github.com/acme/desktop-releases/compare/")


@pytest.mark.parametrize("name", ["push.other_branch.json", "push.unrelated_file.json"])
def test_other_pushes_are_ignored(client, name, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        answer = deliver(client, "push", fixture(name))

    assert answer.json()["handled"] is False and queued == []
    assert not AuditEvent.objects.exists()


def test_an_event_we_do_not_mirror_is_stored_and_ignored(client):
    answer = deliver(
        client, "issues", {"action": "opened", "repository": fixture("ping.json")["repository"]}
    )

    assert answer.status_code == 200 and answer.json()["handled"] is False
    assert WebhookDelivery.objects.filter(event="issues").exists()


def test_only_allow_listed_headers_are_stored_with_a_delivery(client):
    body = json.dumps(fixture("ping.json")).encode()
    extra = {
        "HTTP_CF_ACCESS_JWT_ASSERTION": "eyJhbGciOi.jwt.secret",
        "HTTP_X_AUTH": "x-auth-secret",
        "HTTP_X_CREDENTIAL": "credential-secret",
        "HTTP_X_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----",
        "HTTP_COOKIE": "sessionid=cookie-secret",
    }
    client.post(
        "/github-webhook",
        body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT="ping",
        HTTP_X_GITHUB_DELIVERY="d-headers",
        HTTP_X_HUB_SIGNATURE_256=sign(body),
        HTTP_USER_AGENT="GitHub-Hookshot/abc123",
        **extra,
    )

    stored = WebhookDelivery.objects.get().headers
    assert set(stored) == {
        "X-GitHub-Event",
        "X-GitHub-Delivery",
        "X-Hub-Signature-256",
        "User-Agent",
    }
    assert stored["X-GitHub-Delivery"] == "d-headers"
    assert "secret" not in json.dumps(stored) and "PRIVATE" not in json.dumps(stored)


@pytest.mark.parametrize("depth", [64, 300, 950])
def test_a_signed_body_nested_too_deep_is_a_400(client, release, depth):
    body = b'{"action": "opened", "x": ' + b"[" * depth + b"]" * depth + b"}"
    client.raise_request_exception = False

    answer = deliver(client, "pull_request", body)

    assert answer.status_code == 400 and "nested too deeply" in answer.json()["error"]
    assert not WebhookDelivery.objects.exists()
    assert state_of(release) == ReleaseState.IN_REVIEW
