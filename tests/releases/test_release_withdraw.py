"""A release manager withdraws an accepted release that is not live: the API, the admin action,
and what it does to the desired state (README: Desired-state validation)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services.promotion import promotion_run
from tests.factories import make_build, make_release
from tests.promotion_support import approve, production_contents, stage_build

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:releases_releaserequest_changelist")


def api_as(group: str) -> APIClient:
    user = User.objects.create_user(group.replace(" ", "-"))
    user.groups.add(Group.objects.get(name=group))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).secret}")
    return client


def approved_release(**fields) -> ReleaseRequest:
    build = make_build(status=BuildStatus.APPROVED)
    defaults = {"state": ReleaseState.APPROVED, "merged_by": "ada", "merged_at": timezone.now()}
    return make_release(build, **{**defaults, **fields})


def withdraw(client, release: ReleaseRequest, reason="the release notes are wrong"):
    return client.post(f"/api/releases/{release.pk}/withdraw/", {"reason": reason}, format="json")


def test_a_release_manager_withdraws_an_approved_release_with_a_reason(
    django_capture_on_commit_callbacks, fs_buckets
):
    release = approved_release()

    with django_capture_on_commit_callbacks() as queued:
        answer = withdraw(api_as("release managers"), release)

    assert answer.status_code == 200
    assert answer.json()["state"] == "withdrawn" and answer.json()["id"] == release.pk
    release.refresh_from_db()
    assert release.state == ReleaseState.WITHDRAWN
    assert release.failure_reason == "withdrawn by release-managers: the release notes are wrong"
    assert Build.objects.get(pk=release.build_id).status == BuildStatus.STAGED
    event = AuditEvent.objects.get(kind="release.withdrawn")
    assert event.actor == "release-managers" and event.release_id == release.pk
    assert event.data == {"reason": "the release notes are wrong", "previous_state": "approved"}
    assert len(queued) == 1  # a promotion, so production converges without it


@pytest.mark.parametrize(
    ("state", "merged", "why"),
    [
        (ReleaseState.LIVE, True, "it is live (open a rollback"),
        (ReleaseState.IN_REVIEW, False, "it is in review, not accepted"),
        (ReleaseState.FAILED, False, "it is failed, not accepted"),  # staging failed: not wanted
        (ReleaseState.WITHDRAWN, True, "it is withdrawn, not accepted"),
    ],
)
def test_a_release_that_is_not_accepted_or_already_live_is_a_409(state, merged, why):
    release = approved_release(state=state, merged_at=timezone.now() if merged else None)

    answer = withdraw(api_as("release managers"), release)

    assert answer.status_code == 409
    assert answer.json()["error"].startswith(f"cannot be withdrawn: {why}")
    assert ReleaseRequest.objects.get(pk=release.pk).state == state
    assert not AuditEvent.objects.filter(kind="release.withdrawn").exists()


@pytest.mark.parametrize(
    "state", [ReleaseState.MERGED, ReleaseState.MERGED_UNREVIEWED, ReleaseState.FAILED]
)
def test_a_merged_or_failed_to_promote_release_can_be_withdrawn(state):
    release = approved_release(state=state)  # merged_at is set: it was accepted

    assert withdraw(api_as("release managers"), release).status_code == 200


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": 7}])
def test_a_withdrawal_without_a_reason_is_a_400_that_changes_nothing(body):
    release = approved_release()

    answer = api_as("release managers").post(
        f"/api/releases/{release.pk}/withdraw/", body, format="json"
    )

    assert answer.status_code == 400 and "reason" in answer.json()["error"]
    assert ReleaseRequest.objects.get(pk=release.pk).state == ReleaseState.APPROVED


def test_a_reason_longer_than_the_trail_keeps_is_a_400():
    release = approved_release()
    assert withdraw(api_as("release managers"), release, reason="x" * 1001).status_code == 400


def test_reviewers_and_anonymous_callers_cannot_withdraw():
    release = approved_release()

    assert withdraw(api_as("auditors"), release).status_code == 403
    assert withdraw(APIClient(), release).status_code == 401
    assert ReleaseRequest.objects.get(pk=release.pk).state == ReleaseState.APPROVED


def test_withdrawing_an_unknown_release_is_a_404():
    answer = api_as("release managers").post(
        "/api/releases/999999/withdraw/", {"reason": "x"}, format="json"
    )
    assert answer.status_code == 404


def test_a_withdrawn_approval_is_not_promoted_and_its_rules_are_not_published(fs_buckets):
    live, _ = stage_build("live9", "1.0.0")
    approve(live, release_info={"latestReleaseBuildId": "live9"})
    promotion_run(reason="approved")
    wrong, _ = stage_build("wrong9", "2.0.0")
    release = approve(wrong, release_info={"latestReleaseBuildId": "wrong9"})

    assert withdraw(api_as("release managers"), release).status_code == 200
    promotion_run(reason="reconcile")

    contents = production_contents()
    assert [b["id"] for b in json.loads(contents["desktop-builds.json"])] == ["live9"]
    assert json.loads(contents["desktop-releases.json"]) == {"latestReleaseBuildId": "live9"}
    assert not [key for key in contents if "wrong9" in key]


# --- The admin action ------------------------------------------------------------------------


def admin_login(client, group: str = "release managers") -> User:
    user = User.objects.create_user("rm-admin", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return user


def test_the_admin_action_asks_for_a_reason_then_withdraws(client, fs_buckets):
    release = approved_release()
    admin_login(client)
    chosen = {"action": "withdraw_releases", "_selected_action": [release.pk]}

    page = client.post(CHANGELIST, chosen)
    assert page.status_code == 200 and b'name="reason"' in page.content
    assert str(release).encode() in page.content
    assert ReleaseRequest.objects.get(pk=release.pk).state == ReleaseState.APPROVED

    missing = client.post(CHANGELIST, {**chosen, "confirm": "yes", "reason": " "})
    assert b"a reason is required" in missing.content
    assert ReleaseRequest.objects.get(pk=release.pk).state == ReleaseState.APPROVED

    done = client.post(
        CHANGELIST, {**chosen, "confirm": "yes", "reason": "wrong build"}, follow=True
    )
    messages = [str(m) for m in get_messages(done.wsgi_request)]
    assert messages == [f"{release}: withdrawn"]
    assert ReleaseRequest.objects.get(pk=release.pk).state == ReleaseState.WITHDRAWN
    assert AuditEvent.objects.get(kind="release.withdrawn").actor == "rm-admin"


def test_the_admin_action_says_why_a_live_release_is_not_withdrawn(client, fs_buckets):
    release = approved_release(state=ReleaseState.LIVE)
    admin_login(client)
    chosen = {"action": "withdraw_releases", "_selected_action": [release.pk]}

    page = client.post(CHANGELIST, chosen)
    assert b"cannot be withdrawn: it is live" in page.content
    done = client.post(CHANGELIST, {**chosen, "confirm": "yes", "reason": "x"}, follow=True)

    messages = [str(m) for m in get_messages(done.wsgi_request)]
    assert "not withdrawn: it is live" in messages[0]
    assert ReleaseRequest.objects.get(pk=release.pk).state == ReleaseState.LIVE


def test_reviewers_do_not_get_the_action(client):
    release = approved_release()
    admin_login(client, "auditors")

    page = client.get(CHANGELIST)
    assert b"withdraw_releases" not in page.content
    chosen = {"action": "withdraw_releases", "_selected_action": [release.pk]}
    client.post(CHANGELIST, {**chosen, "confirm": "yes", "reason": "x"})
    assert ReleaseRequest.objects.get(pk=release.pk).state == ReleaseState.APPROVED
