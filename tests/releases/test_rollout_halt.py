"""Halting a staged rollout (README: Staged rollouts › Halt): at once in production, in the
trail, with a review record, and never undone by a reconcile until the review carries it."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission, User

from cdn.metadata import metadata_get
from cdn.resolve import resolve_key
from releases.models import AuditEvent, ReleaseRequest, ReleaseState, RolloutHalt
from releases.services.approvals import release_decide
from releases.services.promotion import promotion_run
from releases.services.rollouts import HaltRefused, rollout_halt
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
INSIDE = "00000000-0000-4000-8000-000000000001"  # in every cohort above 0%


def rollout(percentage: int) -> dict:
    return {"rule": "buildByPercentage", "buildId": "new2", "percentage": percentage}


def polled(staging_id: str = INSIDE) -> str:
    """The manifest the next poll of `latest.yml` gets (the feed's own resolution)."""
    key = resolve_key(
        path="latest.yml", metadata=metadata_get(), client_ip=None, staging_id=staging_id
    )
    return key


def rules() -> dict:
    return json.loads(production_contents()["desktop-releases.json"])


@pytest.fixture
def rolling_out(fs_buckets):
    """Production: old1 is the latest release, new2 rolls out to 30% (admin backend)."""
    old, _ = stage_build("old1", "1.0.0")
    approve(old, release_info={"latestReleaseBuildId": "old1"})
    new, _ = stage_build("new2", "2.0.0")
    approve(new, release_info={"releaseRedirections": [rollout(30)]})
    promotion_run(reason="approved")
    assert polled() == "latest-build-new2.yml"
    return new


def approver() -> User:
    user = User.objects.create_user("ada", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="approve_release"))
    return user


def test_a_halt_takes_effect_on_the_next_poll_and_is_in_the_trail(rolling_out):
    halt = rollout_halt(build_id="new2", actor="rm", reason="crashes on start")

    assert polled() == "latest-build-old1.yml"
    assert rules()["releaseRedirections"] == [rollout(0)]
    event = AuditEvent.objects.get(kind="rollout.halted")
    assert event.actor == "rm" and "crashes on start" in event.message
    assert event.build == rolling_out and event.data["build_id"] == "new2"
    assert halt.active


def test_the_review_catches_up_with_a_release_request_and_a_reconcile_never_undoes_it(
    rolling_out, django_capture_on_commit_callbacks
):
    halt = rollout_halt(build_id="new2", actor="rm", reason="crashes on start")
    record = halt.release
    assert record.kind == "halt" and record.state == ReleaseState.IN_REVIEW
    assert record.release_info == {"releaseRedirections": [rollout(0)]}

    promotion_run(reason="reconcile")  # the approved 30% release is still in the desired state
    assert rules()["releaseRedirections"] == [rollout(0)]
    assert polled() == "latest-build-old1.yml"
    halt.refresh_from_db()
    assert halt.active

    with django_capture_on_commit_callbacks(execute=True):
        assert release_decide(release=record, user=approver(), approve=True) == "approved"
    halt.refresh_from_db()
    record.refresh_from_db()
    assert not halt.active and record.state == ReleaseState.LIVE
    assert AuditEvent.objects.filter(kind="rollout.halt_settled").count() == 1

    # Resuming is a normal reviewed change, and now nothing holds it back.
    approve(rolling_out, release_info={"releaseRedirections": [rollout(60)]})
    promotion_run(reason="approved")
    assert rules()["releaseRedirections"] == [rollout(60)]
    assert polled() == "latest-build-new2.yml"


def test_a_schedule_is_halted_too(fs_buckets):
    old, _ = stage_build("old1", "1.0.0")
    approve(old, release_info={"latestReleaseBuildId": "old1"})
    new, _ = stage_build("new2", "2.0.0")
    steps = [{"at": "2020-01-01T00:00:00Z", "percentage": 100}]
    approve(new, release_info={"releaseRedirections": [{**rollout(0), "schedule": steps}]})
    promotion_run(reason="approved")
    assert polled("ffffffff-ffff-4fff-bfff-fffffffffffe") == "latest-build-new2.yml"

    rollout_halt(build_id="new2", actor="rm", reason="bad")

    assert rules()["releaseRedirections"] == [rollout(0)]
    assert polled() == "latest-build-old1.yml"


@pytest.mark.parametrize(
    ("build_id", "reason", "why"),
    [
        ("old1", "x", "production rolls out no build old1"),
        ("new2", "   ", "a reason is required"),
        ("new2", "x" * 1001, "longer than 1000 characters"),
    ],
)
def test_a_halt_of_nothing_or_without_a_reason_is_refused_and_changes_nothing(
    rolling_out, build_id, reason, why
):
    before = production_contents()["desktop-releases.json"]
    with pytest.raises(HaltRefused, match=why):
        rollout_halt(build_id=build_id, actor="rm", reason=reason)
    assert production_contents()["desktop-releases.json"] == before
    assert not RolloutHalt.objects.exists()
    assert not AuditEvent.objects.filter(kind="rollout.halted").exists()


def test_a_halted_rollout_cannot_be_halted_twice(rolling_out):
    rollout_halt(build_id="new2", actor="rm", reason="bad")
    with pytest.raises(HaltRefused, match="rolls out no build new2"):
        rollout_halt(build_id="new2", actor="rm", reason="again")


@pytest.fixture(scope="module")
def github_server():
    server = start_github_server()
    yield server
    server.stop()


def test_on_github_the_halt_opens_a_pull_request_and_holds_until_it_is_merged(
    client, settings, github_server, fs_buckets, django_capture_on_commit_callbacks
):
    use_fake_github(settings, github_server)
    gh = github_server.gh
    builds = [
        {"id": b, "version": v, "createdAt": "2025-01-01T00:00:00.000Z", "isReleased": True}
        for b, v in (("old1", "1.0.0"), ("new2", "2.0.0"))
    ]
    desired = {"latestReleaseBuildId": "old1", "releaseRedirections": [rollout(30)]}
    gh.reset(
        files={
            "desktop-builds.json": json.dumps(builds, indent=2) + "\n",
            "desktop-releases.json": json.dumps(desired, indent=2) + "\n",
        }
    )
    for build_id, version in (("old1", "1.0.0"), ("new2", "2.0.0")):
        build, _ = stage_build(build_id, version)
        approve(build)  # as if its release PR had been merged after review
        ReleaseRequest.objects.filter(build=build).update(state=ReleaseState.MERGED)
    promotion_run(reason="push")
    assert rules() == desired

    halt = rollout_halt(build_id="new2", actor="rm", reason="crashes")

    record = halt.release
    assert record.branch == "halt-rollout-new2" and record.state == ReleaseState.IN_REVIEW
    on_branch = json.loads(gh.file("desktop-releases.json", "halt-rollout-new2"))
    assert on_branch == {**desired, "releaseRedirections": [rollout(0)]}
    promotion_run(reason="reconcile")  # the default branch still says 30%
    assert rules()["releaseRedirections"] == [rollout(0)]

    gh.review(record.pr_number, user="ada")
    gh.merge(record.pr_number, merged_by="grace")
    with django_capture_on_commit_callbacks(execute=True):
        deliver_github(client, "pull_request", merged_event(gh, record.pr_number))
    halt.refresh_from_db()
    assert not halt.active
    assert (
        production_contents()["desktop-releases.json"] == gh.file("desktop-releases.json").encode()
    )


def test_a_release_manager_halts_from_the_adoption_page_and_others_cannot(client, rolling_out):
    page = "/admin/adoption/adoptioncount/"
    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_adoptioncount"))
    client.force_login(viewer)
    assert client.post(page, {"build_id": "new2", "reason": "bad"}).status_code == 403
    assert rules()["releaseRedirections"] == [rollout(30)]

    manager = User.objects.create_user("rm", is_staff=True)
    manager.user_permissions.set(
        Permission.objects.filter(codename__in=["view_adoptioncount", "halt_rollout"])
    )
    client.force_login(manager)
    assert b"Halt (0% now)" in client.get(page).content
    answer = client.post(page, {"build_id": "new2", "reason": "crashes"}, follow=True)
    assert b"Rollout of new2 halted: 0% in production" in answer.content
    assert rules()["releaseRedirections"] == [rollout(0)]
    assert AuditEvent.objects.get(kind="rollout.halted").actor == "rm"
    answer = client.post(page, {"build_id": "new2", "reason": "again"}, follow=True)
    assert b"Not halted: production rolls out no build new2" in answer.content
