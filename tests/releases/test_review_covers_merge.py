"""GitHub backend: the review covers what is merged (README: What the review covers).

A merge whose head is not the commit the last approving review was given on is "merged with
unreviewed commits": recorded (state, reason, audit) and, with REQUIRE_REVIEWED_HEAD (the
default), not promoted. The fake GitHub keeps reviews with their commit, like GitHub does.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState
from tests.promotion_support import (
    deliver_github,
    go_live_on_github,
    merge_with_webhook,
    open_release_pr,
    production_contents,
    push_event,
    stage_build,
)

pytestmark = pytest.mark.django_db
LIVE = "250210live00010"
NEXT = "250211next00010"
OTHER = "250212othr00010"


@pytest.fixture
def gh(release_repo):
    return release_repo


@pytest.fixture
def live(client, gh, django_capture_on_commit_callbacks):
    """LIVE is in production (reviewed and merged); its rules make it the latest release."""
    go_live_on_github(client, gh, LIVE, django_capture_on_commit_callbacks)
    assert Build.objects.get(build_id=LIVE).status == BuildStatus.LIVE
    return production_contents()


def push_to_branch(gh, release: ReleaseRequest, *, rules: dict, builds: list[str] | None = None):
    """A commit on the PR's branch after its approval."""
    files = {"desktop-releases.json": json.dumps(rules, indent=2)}
    if builds is not None:
        entries = json.loads(gh.file("desktop-builds.json", release.branch))
        entries += [{"id": b, "version": "9.9.9", "isReleased": True} for b in builds]
        files["desktop-builds.json"] = json.dumps(entries, indent=2)
    return gh.commit(release.branch, files, "one more thing")


def test_a_commit_pushed_after_the_approval_is_not_promoted_and_is_in_the_trail(
    client, gh, any_buckets, live, django_capture_on_commit_callbacks
):
    build, files = stage_build(NEXT, "1.1.0")
    release = open_release_pr(gh, build, rules={"latestReleaseBuildId": NEXT})
    approved = gh.review(release.pr_number, user="ada")["commit_id"]
    head = push_to_branch(gh, release, rules={"latestReleaseBuildId": NEXT, "note": "x"})

    merge_with_webhook(client, gh, release, django_capture_on_commit_callbacks, review=False)

    assert production_contents() == live
    release.refresh_from_db()
    assert release.state == ReleaseState.MERGED_UNREVIEWED
    assert release.get_state_display() == "merged with unreviewed commits"
    assert (release.merged_head_sha, release.reviewed_head_sha) == (head, approved)
    assert head[:12] in release.failure_reason and approved[:12] in release.failure_reason
    event = AuditEvent.objects.get(kind="github.pr_merged_unreviewed", release=release)
    assert event.actor == "grace" and "not promoted" in event.message
    assert event.data["head"] == head
    assert Build.objects.get(pk=build.pk).status != BuildStatus.FAILED  # its files are fine
    # Every reconcile refuses it again, without a new event each time.
    with pytest.raises(CommandError, match="merged with unreviewed commits"):
        call_command("reconcile", stdout=StringIO())
    assert AuditEvent.objects.filter(kind="github.pr_merged_unreviewed").count() == 1
    assert AuditEvent.objects.filter(kind="promotion.unreviewed").count() == 1


def test_a_pushed_commit_naming_an_unreviewed_build_as_latest_is_never_published(
    client, gh, fs_buckets, live, django_capture_on_commit_callbacks
):
    next_build, _ = stage_build(NEXT, "1.1.0")
    other_build, _ = stage_build(OTHER, "6.6.6")
    other = open_release_pr(gh, other_build)  # open, never reviewed
    release = open_release_pr(gh, next_build, rules={"latestReleaseBuildId": NEXT})
    gh.review(release.pr_number, user="ada")
    push_to_branch(gh, release, rules={"latestReleaseBuildId": OTHER}, builds=[OTHER])

    merge_with_webhook(client, gh, release, django_capture_on_commit_callbacks, review=False)

    assert production_contents() == live
    assert json.loads(gh.file("desktop-releases.json")) == {"latestReleaseBuildId": OTHER}
    other.refresh_from_db()
    assert other.state == ReleaseState.IN_REVIEW
    assert client.get("/update/latest.yml").status_code == 200
    invalid = AuditEvent.objects.get(kind="promotion.desired_state_invalid")
    assert OTHER in json.dumps(invalid.data["reasons"])


def test_without_require_reviewed_head_the_merge_is_promoted_and_still_recorded(
    client, gh, fs_buckets, live, settings, django_capture_on_commit_callbacks
):
    settings.REQUIRE_REVIEWED_HEAD = False
    build, files = stage_build(NEXT, "1.1.0")
    release = open_release_pr(gh, build, rules={"latestReleaseBuildId": NEXT})
    gh.review(release.pr_number, user="ada")
    push_to_branch(gh, release, rules={"latestReleaseBuildId": NEXT})

    merge_with_webhook(client, gh, release, django_capture_on_commit_callbacks, review=False)

    contents = production_contents()
    assert all(contents[name] == data for name, data in files.items())
    assert json.loads(contents["desktop-releases.json"]) == {"latestReleaseBuildId": NEXT}
    release.refresh_from_db()
    assert release.state == ReleaseState.LIVE
    event = AuditEvent.objects.get(kind="github.pr_merged_unreviewed")
    assert "promoted anyway" in event.message


@pytest.mark.parametrize(
    ("reviews", "why"),
    [
        ([], "without an approving review"),
        ([("ada", "APPROVED"), ("bob", "CHANGES_REQUESTED")], "while bob requested changes"),
        ([("ada", "APPROVED"), ("ada", "DISMISSED")], "without an approving review"),
    ],
    ids=["no approval", "changes requested", "approval dismissed"],
)
def test_a_merge_without_a_standing_approval_of_its_head_is_unreviewed(
    client, gh, fs_buckets, live, django_capture_on_commit_callbacks, reviews, why
):
    build, _ = stage_build(NEXT, "1.1.0")
    release = open_release_pr(gh, build, rules={"latestReleaseBuildId": NEXT})
    given = []
    for user, state in reviews:
        if state == "DISMISSED":
            gh.dismiss(release.pr_number, given[-1]["id"])
        else:
            given.append(gh.review(release.pr_number, user=user, state=state))

    merge_with_webhook(client, gh, release, django_capture_on_commit_callbacks, review=False)

    release.refresh_from_db()
    assert release.state == ReleaseState.MERGED_UNREVIEWED and why in release.failure_reason
    assert production_contents() == live


def test_an_approval_of_the_merged_head_lets_it_through(
    client, gh, fs_buckets, live, django_capture_on_commit_callbacks
):
    build, files = stage_build(NEXT, "1.1.0")
    release = open_release_pr(gh, build, rules={"latestReleaseBuildId": NEXT})
    gh.review(release.pr_number, user="ada")
    push_to_branch(gh, release, rules={"latestReleaseBuildId": NEXT})
    merge_with_webhook(client, gh, release, django_capture_on_commit_callbacks, review=False)
    assert production_contents() == live

    review = gh.review(release.pr_number, user="bob")  # on the head that was merged
    payload = {
        "action": "submitted",
        "review": {**review, "state": "approved"},
        "pull_request": gh.pull(release.pr_number),
        "repository": gh._repo_json(),
        "sender": gh._user_json("bob"),
    }
    with django_capture_on_commit_callbacks(execute=True):
        answer = deliver_github(client, "pull_request_review", payload)

    assert answer.status_code == 200
    release.refresh_from_db()
    assert release.state == ReleaseState.LIVE and release.reviewed_head_sha == review["commit_id"]
    contents = production_contents()
    assert all(contents[name] == data for name, data in files.items())
    assert AuditEvent.objects.get(kind="github.pr_merge_covered").release_id == release.pk
    review_event = AuditEvent.objects.get(kind="github.review_approved", release=release)
    assert review_event.data["commit_id"] == review["commit_id"]


def test_an_unreviewed_merge_holds_new_rules_until_it_is_withdrawn(
    client, gh, fs_buckets, live, django_capture_on_commit_callbacks
):
    from releases.services.withdrawal import release_withdraw

    build, _ = stage_build(NEXT, "1.1.0")
    bad = open_release_pr(gh, build)
    gh.review(bad.pr_number, user="ada")
    push_to_branch(gh, bad, rules={"latestReleaseBuildId": LIVE, "note": "unreviewed"})
    merge_with_webhook(client, gh, bad, django_capture_on_commit_callbacks, review=False)
    other_build, other_files = stage_build(OTHER, "1.2.0")
    good = open_release_pr(gh, other_build, rules={"latestReleaseBuildId": OTHER})

    merge_with_webhook(client, gh, good, django_capture_on_commit_callbacks)

    contents = production_contents()
    assert all(contents[name] == data for name, data in other_files.items())  # reviewed: out
    assert [b["id"] for b in json.loads(contents["desktop-builds.json"])] == [LIVE, OTHER]
    assert contents["desktop-releases.json"] == live["desktop-releases.json"]  # held
    invalid = AuditEvent.objects.filter(kind="promotion.desired_state_invalid").last()
    assert f"pull request #{bad.pr_number}" in invalid.message
    bad.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        release_withdraw(release=bad, actor="rm", reason="merged without review")

    assert json.loads(production_contents()["desktop-releases.json"]) == json.loads(
        gh.file("desktop-releases.json")
    )
    assert AuditEvent.objects.filter(kind="promotion.desired_state_restored").exists()
    assert ReleaseRequest.objects.get(pk=good.pk).state == ReleaseState.LIVE


def test_reconcile_checks_a_merge_whose_webhook_was_missed(gh, fs_buckets, live):
    build, _ = stage_build(NEXT, "1.1.0")
    release = open_release_pr(gh, build, rules={"latestReleaseBuildId": NEXT})
    gh.merge(release.pr_number, merged_by="mallory")  # no review, and no webhook arrives

    with pytest.raises(CommandError, match="without an approving review"):
        call_command("reconcile", stdout=StringIO())

    release.refresh_from_db()
    assert release.state == ReleaseState.MERGED_UNREVIEWED and release.merged_by == "mallory"
    assert production_contents() == live


def test_a_dry_run_reports_an_unreviewed_merge_and_records_nothing(gh, fs_buckets, live):
    build, _ = stage_build(NEXT, "1.1.0")
    release = open_release_pr(gh, build, rules={"latestReleaseBuildId": NEXT})
    gh.merge(release.pr_number, merged_by="mallory")
    events = AuditEvent.objects.count()
    out = StringIO()

    call_command("reconcile", "--dry-run", stdout=out)

    assert f"cannot promote {NEXT}: merged with unreviewed commits" in out.getvalue()
    assert "desired state not published" in out.getvalue()
    assert AuditEvent.objects.count() == events
    release.refresh_from_db()
    assert release.state == ReleaseState.IN_REVIEW and release.merged_head_sha == ""
    assert production_contents() == live


def test_a_build_pushed_to_the_default_branch_without_a_pull_request_is_not_promoted(
    client, gh, fs_buckets, live, django_capture_on_commit_callbacks
):
    stage_build(NEXT, "1.1.0")  # staged and verified; its review never happened
    entries = json.loads(gh.file("desktop-builds.json"))
    entries.append({"id": NEXT, "version": "1.1.0", "isReleased": True})
    gh.commit("main", {"desktop-builds.json": json.dumps(entries)}, "straight to main")

    with django_capture_on_commit_callbacks(execute=True):
        deliver_github(client, "push", push_event(gh, files=["desktop-builds.json"]))

    assert production_contents() == live
    event = AuditEvent.objects.get(kind="promotion.unreviewed")
    assert "no release pull request for it was merged" in event.message


def test_a_push_that_points_the_rules_at_another_live_build_is_published(
    client, gh, fs_buckets, live, django_capture_on_commit_callbacks
):
    # Documented: rules among builds that were reviewed are the repository owners' to edit;
    # branch protection decides who may push to the default branch.
    build, _ = stage_build(NEXT, "1.1.0")
    release = open_release_pr(gh, build, rules={"latestReleaseBuildId": NEXT})
    merge_with_webhook(client, gh, release, django_capture_on_commit_callbacks)
    back = json.dumps({"latestReleaseBuildId": LIVE}, indent=2)
    gh.commit("main", {"desktop-releases.json": back}, "back to the previous build")

    with django_capture_on_commit_callbacks(execute=True):
        deliver_github(client, "push", push_event(gh, files=["desktop-releases.json"]))

    assert production_contents()["desktop-releases.json"] == back.encode()


def test_an_unreviewed_merge_notifies_promotion_failed_once(
    client, gh, fs_buckets, live, django_capture_on_commit_callbacks, settings
):
    """The merge is announced (`github.pr_merged_unreviewed`); the promotion refusing its build
    and holding its rules says so in the trail too, but tells nobody a second or third time."""
    from releases.models import Notification
    from releases.services.notifications import notifications_fan_out

    settings.NOTIFY_WEBHOOK_URL = "https://hooks.example.test/releases"
    build, _ = stage_build(NEXT, "1.1.0")
    release = open_release_pr(gh, build, rules={"latestReleaseBuildId": NEXT})
    gh.review(release.pr_number, user="ada")
    push_to_branch(gh, release, rules={"latestReleaseBuildId": NEXT, "note": "x"})

    merge_with_webhook(client, gh, release, django_capture_on_commit_callbacks, review=False)
    with pytest.raises(CommandError):
        call_command("reconcile", stdout=StringIO())

    events = AuditEvent.objects.order_by("sequence")
    since = events.filter(kind="github.pr_merged_unreviewed").get()
    for event in events.filter(sequence__gte=since.sequence):
        notifications_fan_out(event_id=event.pk)  # what the notify worker does for each event
    failed = Notification.objects.filter(kind="promotion.failed")
    assert list(failed.values_list("event__kind", flat=True)) == ["github.pr_merged_unreviewed"]
    kinds = set(events.values_list("kind", flat=True))
    assert {"promotion.unreviewed", "promotion.desired_state_invalid"} <= kinds  # in the trail
