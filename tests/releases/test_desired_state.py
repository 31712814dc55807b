"""The desired state is validated before it is published, and one unpromotable build never
blocks the others (README: Desired-state validation)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from releases.integrations import buckets
from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services.promotion import PromotionFailed, promotion_run
from tests.promotion_support import (
    approve,
    deliver_github,
    go_live_on_github,
    production_contents,
    push_event,
    stage_build,
)

pytestmark = pytest.mark.django_db
INVALID = "promotion.desired_state_invalid"
RESTORED = "promotion.desired_state_restored"


def listed() -> list[str]:
    return [entry["id"] for entry in json.loads(production_contents()["desktop-builds.json"])]


def rules() -> dict:
    return json.loads(production_contents()["desktop-releases.json"])


# --- M2: one unpromotable build never blocks the others ---------------------------------------


def test_a_build_staging_never_stored_fails_alone_and_later_builds_are_promoted_and_listed(
    fs_buckets,
):
    first, _ = stage_build("first1", "1.0.0")
    approve(first, release_info={"latestReleaseBuildId": "first1"})
    promotion_run(reason="approved")
    # Staging "stored" one file under a name the bucket's list() skips (its partial writes).
    stuck, _ = stage_build("stuck1", "1.1.0")
    stuck.files.create(name=".tmp-7f3a", size=5, verification="verified")
    buckets.staging().write_bytes("stuck1/.tmp-7f3a", b"bytes")
    approve(stuck, release_info={"latestReleaseBuildId": "stuck1"})
    later, later_files = stage_build("later1", "1.2.0")
    approve(later, release_info={"latestReleaseBuildId": "later1"})

    with pytest.raises(PromotionFailed, match="stuck1: 1 file.s. missing from staging"):
        promotion_run(reason="approved")

    assert listed() == ["first1", "later1"]
    assert rules() == {"latestReleaseBuildId": "later1"}
    contents = production_contents()
    assert all(contents[name] == data for name, data in later_files.items())
    assert not [key for key in contents if "stuck1" in key]
    stuck.refresh_from_db()
    assert stuck.status == BuildStatus.FAILED and "missing from staging" in stuck.failure_reason
    assert ReleaseRequest.objects.get(build=later).state == ReleaseState.LIVE
    # A periodic reconcile says it again, but does not add to the trail every time.
    with pytest.raises(CommandError, match="stuck1"):
        call_command("reconcile", stdout=StringIO())
    assert AuditEvent.objects.filter(kind="promotion.failed", build=stuck).count() == 1


def test_withdrawing_the_unpromotable_build_brings_production_back_in_sync(client, fs_buckets):
    stuck = Build.objects.create(build_id="ghost2", app_id="app1", version="2.0.0")
    release = approve(stuck)
    good, _ = stage_build("good2", "2.1.0")
    approve(good)
    with pytest.raises(PromotionFailed):
        promotion_run(reason="approved")
    manager = _manager("withdraw_release")
    client.force_login(manager)

    answer = client.post(
        f"/api/releases/{release.pk}/withdraw/", {"reason": "never staged"}, "application/json"
    )

    assert answer.status_code == 200 and answer.json()["state"] == "withdrawn"
    out = StringIO()
    call_command("reconcile", stdout=out)
    assert out.getvalue().strip() == "in sync"
    assert listed() == ["good2"]


def _manager(*perms: str):
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("rm", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    return user


# --- Rules must name builds that are listed, staged and verified (admin backend) -------------


def test_rules_naming_a_build_that_is_not_approved_are_not_published(fs_buckets, client):
    old, _ = stage_build("old3", "1.0.0")
    approve(old, release_info={"latestReleaseBuildId": "old3"})
    promotion_run(reason="approved")
    stage_build("pending3", "3.0.0")  # staged and verified, but nobody approved it
    new, new_files = stage_build("new3", "2.0.0")
    release = approve(new, release_info={"latestReleaseBuildId": "pending3"})

    with pytest.raises(PromotionFailed, match="names build pending3, which is not listed"):
        promotion_run(reason="approved")

    assert rules() == {"latestReleaseBuildId": "old3"}  # the last good state
    assert listed() == ["old3", "new3"]  # its files are fine: listed, not made the latest
    release.refresh_from_db()
    assert release.state == ReleaseState.APPROVED  # not live: its rules are not out
    event = AuditEvent.objects.get(kind=INVALID)
    assert "pending3" in event.message and event.data["reasons"]
    body = client.get("/healthz").json()
    assert body["status"] == "degraded" and client.get("/healthz").status_code == 200
    assert "pending3" not in json.dumps(body)  # anonymous: no build ids, no rules


@pytest.mark.parametrize(
    ("published", "why"),
    [
        ({"latestReleaseBuildId": "unverified4"}, "cannot be promoted: 1 file(s) never verified"),
        (
            {"releaseRedirections": [{"rule": "build", "buildId": "nowhere4"}]},
            "releaseRedirections[0] (build) names build nowhere4, which is not listed",
        ),
        (
            {"releaseRedirections": [{"rule": "buildByIp", "buildId": "ok4", "ipList": "1.2.3.4"}]},
            "releaseRedirections[0].ipList must be a list",
        ),
    ],
)
def test_a_rule_naming_an_unpromotable_or_unknown_build_keeps_the_last_good_rules(
    fs_buckets, published, why
):
    ok, _ = stage_build("ok4", "1.0.0")
    approve(ok, release_info={"latestReleaseBuildId": "ok4"})
    promotion_run(reason="approved")
    unverified, files = stage_build("unverified4", "2.0.0")
    unverified.files.filter(name=next(iter(files))).update(verification="pending")
    approve(unverified)
    ReleaseRequest.objects.filter(build=ok).update(release_info={**published})

    with pytest.raises(PromotionFailed) as failure:
        promotion_run(reason="approved")

    assert why in str(failure.value)
    assert rules() == {"latestReleaseBuildId": "ok4"}
    assert listed() == ["ok4"]


def test_when_rules_become_valid_again_they_are_published_and_health_recovers(fs_buckets, client):
    a, _ = stage_build("a5", "1.0.0")
    approve(a, release_info={"latestReleaseBuildId": "b5"})
    with pytest.raises(PromotionFailed):
        promotion_run(reason="approved")
    with pytest.raises(PromotionFailed):
        promotion_run(reason="reconcile")
    assert AuditEvent.objects.filter(kind=INVALID).count() == 1  # said once, not every run
    b, _ = stage_build("b5", "1.1.0")
    approve(b)

    promotion_run(reason="approved")

    assert rules() == {"latestReleaseBuildId": "b5"} and listed() == ["a5", "b5"]
    assert AuditEvent.objects.filter(kind=RESTORED).count() == 1
    assert client.get("/healthz").json()["status"] == "ok"


# --- GitHub: the default branch is validated before it is published --------------------------


@pytest.fixture
def gh(release_repo):
    return release_repo


def test_a_push_naming_a_build_that_does_not_exist_leaves_production_unchanged(
    client, gh, any_buckets, django_capture_on_commit_callbacks
):
    go_live_on_github(client, gh, "250210live0006", django_capture_on_commit_callbacks)
    before = production_contents()
    broken = json.dumps({"latestReleaseBuildId": "250299nothere01"}, indent=2)
    gh.commit("main", {"desktop-releases.json": broken}, "release a build that does not exist")

    with django_capture_on_commit_callbacks(execute=True):
        deliver_github(client, "push", push_event(gh, files=["desktop-releases.json"]))

    assert production_contents() == before
    assert client.get("/update/latest.yml").status_code == 200  # clients keep their build
    event = AuditEvent.objects.get(kind=INVALID)
    assert "250299nothere01" in event.message and "not listed" in event.message
    assert client.get("/healthz").json()["checks"]["desired_state"]["degraded"]


def test_a_broken_desktop_builds_json_on_the_default_branch_changes_nothing(
    client, gh, fs_buckets, django_capture_on_commit_callbacks
):
    go_live_on_github(client, gh, "250210live0007", django_capture_on_commit_callbacks)
    before = production_contents()
    gh.commit("main", {"desktop-builds.json": '[{"id": "../x"}]'}, "hand edit")

    with pytest.raises(CommandError, match="desktop-builds.json is not valid"):
        call_command("reconcile", stdout=StringIO())

    assert production_contents() == before
    assert AuditEvent.objects.filter(kind=INVALID).count() == 1


def test_builds_are_not_unlisted_under_rules_that_production_keeps(
    client, gh, fs_buckets, django_capture_on_commit_callbacks
):
    go_live_on_github(client, gh, "250210live0008", django_capture_on_commit_callbacks)
    before = production_contents()
    gh.commit(
        "main",
        {"desktop-builds.json": "[]\n", "desktop-releases.json": '{"latestReleaseBuildId": 7}'},
        "hand edit",
    )

    with pytest.raises(CommandError) as failure:
        call_command("reconcile", stdout=StringIO())

    assert "desktop-builds.json is not published either" in str(failure.value)
    assert production_contents() == before
