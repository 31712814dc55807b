"""Admin backend: Approve / Reject actions, REQUIRED_APPROVALS distinct approvers, promotion."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission, User

from releases.models import Approval, AuditEvent, BuildStatus, ReleaseRequest, ReleaseState
from tests.notify_support import work_queued
from tests.promotion_support import production_contents, stage_build

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/releases/releaserequest/"


def staff(name: str, *perms: str) -> User:
    user = User.objects.create_user(name, password="pw", is_staff=True)
    codenames = ["view_releaserequest", *perms]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def in_review(build_id: str = "adm1", **info) -> ReleaseRequest:
    build, _ = stage_build(build_id)
    return ReleaseRequest.objects.create(
        build=build, state=ReleaseState.IN_REVIEW, release_info=info or None
    )


def act(client, user: User, action: str, release: ReleaseRequest):
    client.force_login(user)
    return client.post(CHANGELIST, {"action": action, "_selected_action": [release.pk]})


def test_two_distinct_approvers_release_the_build_to_production(
    client, settings, fs_buckets, django_capture_on_commit_callbacks
):
    settings.REQUIRED_APPROVALS = 2
    release = in_review(latestReleaseBuildId="adm1")
    ada, bob = staff("ada", "approve_release"), staff("bob", "approve_release")

    with django_capture_on_commit_callbacks(execute=True) as first:
        act(client, ada, "approve_releases", release)
        second_try = act(client, ada, "approve_releases", release)  # refused, nothing written
    release.refresh_from_db()
    assert "ada already approved it" in " ".join(map(str, second_try.wsgi_request._messages))
    assert release.state == ReleaseState.IN_REVIEW and first == []

    with django_capture_on_commit_callbacks(execute=True) as second:
        act(client, bob, "approve_releases", release)

    assert len(work_queued(second)) == 1
    release.refresh_from_db()
    assert release.state == ReleaseState.LIVE and release.merged_by == "ada, bob"
    assert release.build.status == BuildStatus.LIVE
    contents = production_contents()
    assert json.loads(contents["desktop-releases.json"]) == {"latestReleaseBuildId": "adm1"}
    assert [e["id"] for e in json.loads(contents["desktop-builds.json"])] == ["adm1"]
    assert AuditEvent.objects.filter(kind="review.approved").count() == 2
    assert AuditEvent.objects.get(kind="review.accepted").actor == "ada, bob"


def test_a_rejection_rejects_and_promotes_nothing(
    client, fs_buckets, django_capture_on_commit_callbacks
):
    release = in_review()
    ada = staff("ada", "approve_release")

    with django_capture_on_commit_callbacks(execute=True) as queued:
        client.force_login(ada)
        client.post(
            f"{CHANGELIST}{release.pk}/decide/",
            {"decision": "reject", "comment": "wrong icon", "confirm": "yes"},
        )

    release.refresh_from_db()
    assert release.state == ReleaseState.REJECTED and work_queued(queued) == []
    assert release.build.status == BuildStatus.REJECTED
    assert production_contents() == {}
    rejected = AuditEvent.objects.get(kind="review.rejected")
    assert rejected.actor == "ada" and rejected.data == {"comment": "wrong icon"}


def test_without_the_approve_permission_the_action_does_nothing(client, fs_buckets):
    release = in_review()
    viewer = staff("viewer")

    act(client, viewer, "approve_releases", release)

    release.refresh_from_db()
    assert release.state == ReleaseState.IN_REVIEW and not Approval.objects.exists()
    client.force_login(viewer)
    assert b"approve_releases" not in client.get(CHANGELIST).content


def test_a_release_that_is_not_in_review_cannot_be_approved(client, fs_buckets):
    release = in_review()
    ReleaseRequest.objects.filter(pk=release.pk).update(state=ReleaseState.CLOSED)
    ada = staff("ada", "approve_release")

    answer = act(client, ada, "approve_releases", release)

    assert not Approval.objects.exists()
    assert "it is closed" in " ".join(str(m) for m in answer.wsgi_request._messages)


def test_with_the_github_backend_admin_approvals_are_refused(client, settings, fs_buckets):
    release = in_review()
    settings.REVIEW_BACKEND = "github"
    ada = staff("ada", "approve_release")

    act(client, ada, "approve_releases", release)

    release.refresh_from_db()
    assert release.state == ReleaseState.IN_REVIEW and not Approval.objects.exists()
