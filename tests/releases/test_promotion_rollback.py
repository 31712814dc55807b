"""Rollback: an admin action on a live build opens a review that sets latestReleaseBuildId."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.utils import timezone

from releases.integrations import buckets
from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState
from tests.fakes.github_server import start_github_server
from tests.promotion_support import (
    approve,
    deliver_github,
    merged_event,
    production_contents,
    stage_build,
    use_fake_github,
)

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/releases/build/"


@pytest.fixture(scope="module")
def github_server():
    server = start_github_server()
    yield server
    server.stop()


def manager(*perms: str) -> User:
    user = User.objects.create_user("rm", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_build", *perms]))
    return user


def live_build(build_id: str, version: str) -> Build:
    build, _ = stage_build(build_id, version)
    Build.objects.filter(pk=build.pk).update(status=BuildStatus.LIVE, live_at=timezone.now())
    build.refresh_from_db()
    return build


def rollback_action(client, user: User, build: Build):
    client.force_login(user)
    return client.post(CHANGELIST, {"action": "rollback_to_build", "_selected_action": [build.pk]})


def test_a_rollback_opens_a_pull_request_that_sets_the_latest_build(
    client, settings, github_server, fs_buckets, django_capture_on_commit_callbacks
):
    use_fake_github(settings, github_server)
    linux = {"rule": "buildByPlatform", "buildId": "old1", "platforms": ["linux"]}
    rules = {"latestReleaseBuildId": "new2", "releaseRedirections": [linux]}
    builds = [
        {
            "id": build_id,
            "version": version,
            "createdAt": "2025-01-01T00:00:00.000Z",
            "isReleased": True,
        }
        for build_id, version in (("old1", "1.0.0"), ("new2", "2.0.0"))
    ]
    github_server.gh.reset(
        files={
            "desktop-builds.json": json.dumps(builds, indent=2),
            "desktop-releases.json": json.dumps(rules, indent=2),
        }
    )
    gh = github_server.gh
    old = live_build("old1", "1.0.0")
    production = buckets.production(role="promoter")
    production.write_bytes("desktop-builds.json", json.dumps(builds, indent=2).encode())

    rollback_action(client, manager("rollback_build"), old)

    release = ReleaseRequest.objects.get(kind="rollback")
    assert release.state == ReleaseState.IN_REVIEW and release.branch == "rollback-to-old1"
    pull = gh.pull(release.pr_number)
    assert pull["head"]["ref"] == "rollback-to-old1" and pull["base"]["ref"] == "main"
    on_branch = json.loads(gh.file("desktop-releases.json", "rollback-to-old1"))
    assert on_branch == {**rules, "latestReleaseBuildId": "old1"}
    assert gh.history("rollback-to-old1") == ["Roll back to build old1 (v1.0.0)"]
    assert AuditEvent.objects.get(kind="rollback.opened").actor == "rm"

    gh.review(release.pr_number, user="ada")
    gh.merge(release.pr_number, merged_by="grace")
    with django_capture_on_commit_callbacks(execute=True):
        deliver_github(client, "pull_request", merged_event(gh, release.pr_number))

    release.refresh_from_db()
    assert release.state == ReleaseState.LIVE and release.merged_by == "grace"
    live = production_contents()["desktop-releases.json"]
    assert live == gh.file("desktop-releases.json").encode()
    assert json.loads(live)["latestReleaseBuildId"] == "old1"


def test_a_second_rollback_waits_for_the_first_then_gets_its_own_branch(
    client, settings, github_server, fs_buckets
):
    use_fake_github(settings, github_server)
    github_server.gh.reset(files={"desktop-builds.json": "[]\n"})
    old = live_build("old1", "1.0.0")
    user = manager("rollback_build")

    rollback_action(client, user, old)
    rollback_action(client, user, old)  # a double click: the first one is still open
    assert ReleaseRequest.objects.filter(kind="rollback").count() == 1
    assert len(github_server.gh.pulls("open")) == 1

    ReleaseRequest.objects.filter(kind="rollback").update(state=ReleaseState.CLOSED)
    rollback_action(client, user, old)

    branches = sorted(ReleaseRequest.objects.values_list("branch", flat=True))
    assert branches == ["rollback-to-old1", "rollback-to-old1-1"]


def test_only_a_live_build_can_be_rolled_back_to(client, settings, github_server, fs_buckets):
    use_fake_github(settings, github_server)
    github_server.gh.reset()
    build, _ = stage_build("notlive1")

    answer = rollback_action(client, manager("rollback_build"), build)

    assert not ReleaseRequest.objects.filter(kind="rollback").exists()
    assert github_server.gh.pulls() == []
    messages = " ".join(str(m) for m in answer.wsgi_request._messages)
    assert "not live" in messages


def test_without_the_rollback_permission_nothing_is_opened(client, fs_buckets):
    old = live_build("old1", "1.0.0")

    rollback_action(client, manager(), old)

    assert not ReleaseRequest.objects.filter(kind="rollback").exists()


def test_with_the_admin_backend_a_rollback_waits_for_approval_then_is_promoted(
    client, fs_buckets, django_capture_on_commit_callbacks
):
    old, _ = stage_build("old1", "1.0.0")
    approve(old, release_info={"latestReleaseBuildId": "old1"})
    new, _ = stage_build("new2", "2.0.0")
    approve(new, release_info={"latestReleaseBuildId": "new2"})
    call_command("reconcile", stdout=StringIO())
    old.refresh_from_db()

    rollback_action(client, manager("rollback_build"), old)

    rollback = ReleaseRequest.objects.get(kind="rollback")
    assert rollback.state == ReleaseState.IN_REVIEW
    assert json.loads(production_contents()["desktop-releases.json"]) == {
        "latestReleaseBuildId": "new2"
    }
    approver = User.objects.create_user("ada", is_staff=True)
    approver.user_permissions.set(
        Permission.objects.filter(codename__in=["approve_release", "view_releaserequest"])
    )
    client.force_login(approver)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/releases/releaserequest/",
            {"action": "approve_releases", "_selected_action": [rollback.pk]},
        )

    rollback.refresh_from_db()
    assert rollback.state == ReleaseState.LIVE
    assert json.loads(production_contents()["desktop-releases.json"]) == {
        "latestReleaseBuildId": "old1"
    }
