"""docs/review.md: GitHub failures, retries and exactly-once PR creation, against the fake
GitHub."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Permission, User

from releases.models import AuditEvent, BuildStatus, ReleaseRequest, ReleaseState
from releases.services.review import review_open
from tests.releases.test_review_github import BRANCH, opened, staged_release

pytestmark = pytest.mark.django_db


def test_a_502_is_retried_and_the_pr_opens(fake_github):
    fake_github.fail(502, method="POST", path="/pulls$")
    release = opened(staged_release())

    assert release.state == ReleaseState.IN_REVIEW
    assert len(fake_github.pulls()) == 1
    assert [r.status for r in fake_github.requests if r.path.endswith("/pulls")][-2:] == [502, 201]


def test_a_secondary_rate_limit_with_retry_after_1_waits_and_succeeds(fake_github):
    fake_github.rate_limit(retry_after=1, path="/contents/desktop-builds.json$")
    started = time.monotonic()
    release = opened(staged_release())

    assert release.state == ReleaseState.IN_REVIEW
    limited = [r for r in fake_github.requests if r.status == 403]
    after = next(r for r in fake_github.requests if r.at > limited[0].at)
    assert after.at - limited[0].at >= 1.0
    assert time.monotonic() - started >= 1.0


def test_a_permanent_401_leaves_a_failed_request_with_githubs_message(fake_github, settings):
    settings.GITHUB_TOKEN = "ghp_revoked"
    release = opened(staged_release())

    assert release.state == ReleaseState.FAILED
    assert release.failure_reason == "GitHub 401: Bad credentials"
    assert release.pr_number is None
    assert release.build.status == BuildStatus.STAGED  # its files are fine; see review.py
    assert release.build.failure_reason == "review failed: GitHub 401: Bad credentials"
    event = AuditEvent.objects.get(kind="review.failed")
    assert "Bad credentials" in event.message
    assert fake_github.pulls() == [] and list(fake_github.branches) == ["main"]
    assert len(fake_github.requests) == 1  # a 401 is not retried


def test_5xx_until_the_retries_run_out_fails_and_a_retry_continues_on_the_same_branch(
    fake_github, settings
):
    settings.GITHUB_MAX_RETRIES = 1
    fake_github.fail(503, method="POST", path="/pulls$", times=None, message="Service Unavailable")
    release = opened(staged_release())
    assert release.state == ReleaseState.FAILED
    assert release.failure_reason == "GitHub 503: Service Unavailable"
    commits = fake_github.history(BRANCH)

    fake_github.faults.clear()
    release = opened(release)
    assert release.state == ReleaseState.IN_REVIEW
    assert release.branch == BRANCH
    assert fake_github.history(BRANCH) == commits  # nothing committed twice
    assert len(fake_github.pulls()) == 1


def test_a_retry_after_a_crash_before_the_pr_number_was_saved_finds_the_pr(fake_github):
    release = opened(staged_release())
    commits = fake_github.history(BRANCH)
    # The database as a crash between "PR created" and "PR number saved" leaves it.
    ReleaseRequest.objects.filter(pk=release.pk).update(
        pr_number=None, pr_url="", state=ReleaseState.AWAITING_REVIEW
    )
    release.refresh_from_db()

    release = opened(release)
    assert len(fake_github.pulls()) == 1
    assert (release.pr_number, release.state) == (1, ReleaseState.IN_REVIEW)
    assert fake_github.history(BRANCH) == commits
    assert AuditEvent.objects.filter(kind="review.pr_found").count() == 1


def test_a_lost_response_to_creating_the_branch_does_not_skip_to_1(fake_github):
    fake_github.fail(502, method="POST", path="/git/refs$", after=True)
    release = opened(staged_release())
    assert release.branch == BRANCH
    assert list(fake_github.branches) == ["main", BRANCH]


def test_a_lost_response_to_creating_the_pr_does_not_open_a_second_one(fake_github):
    fake_github.fail(502, method="POST", path="/pulls$", after=True)
    release = opened(staged_release())
    assert release.state == ReleaseState.IN_REVIEW
    assert len(fake_github.pulls()) == 1


def test_an_open_review_is_not_opened_again(fake_github):
    release = opened(staged_release())
    count = len(fake_github.requests)
    review_open(release=release)
    assert len(fake_github.requests) == count


def test_a_build_that_is_not_staged_gets_no_pr(fake_github):
    release = staged_release()
    type(release.build).objects.filter(pk=release.build.pk).update(status=BuildStatus.FAILED)
    release.refresh_from_db()
    release = opened(release)
    assert release.state == ReleaseState.AWAITING_REVIEW
    assert fake_github.requests == []


def test_the_admin_backend_still_waits_for_approvals_without_github(fake_github, settings):
    settings.REVIEW_BACKEND = "admin"
    release = opened(staged_release())
    assert release.state == ReleaseState.IN_REVIEW
    assert fake_github.requests == []


def _manager(client, *, can_retry: bool) -> None:
    user = User.objects.create_user("rm", password="x", is_staff=True)
    codenames = ["view_releaserequest"] + (["retry_build"] if can_retry else [])
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)


def _messages(response) -> list[str]:
    return [message.message for message in response.context["messages"]]


def test_a_release_manager_retries_a_failed_review_from_the_admin(
    fake_github, settings, client, django_capture_on_commit_callbacks
):
    settings.GITHUB_TOKEN = "ghp_revoked"
    release = opened(staged_release())
    assert release.state == ReleaseState.FAILED
    settings.GITHUB_TOKEN = "ghp_testtoken"
    _manager(client, can_retry=True)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/releases/releaserequest/",
            {"action": "retry_review", "_selected_action": [release.pk]},
            follow=True,
        )
    assert _messages(response) == ["queued the review of 1 release(s)"]
    release.refresh_from_db()
    assert release.state == ReleaseState.IN_REVIEW
    assert len(fake_github.pulls()) == 1
    assert AuditEvent.objects.get(kind="review.retry").actor == "rm"


def test_the_retry_action_skips_a_review_that_is_open(fake_github, client):
    release = opened(staged_release())
    _manager(client, can_retry=True)
    response = client.post(
        "/admin/releases/releaserequest/",
        {"action": "retry_review", "_selected_action": [release.pk]},
        follow=True,
    )
    assert _messages(response) == [f"not retried: #{release.pk} (it is in review)"]
    assert len(fake_github.pulls()) == 1


def test_the_retry_action_needs_the_retry_permission(fake_github, client):
    _manager(client, can_retry=False)
    response = client.get("/admin/releases/releaserequest/")
    assert response.status_code == 200
    assert "retry_review" not in response.content.decode()
