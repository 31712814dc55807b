"""Promotion with the GitHub backend: the desired state is the default branch (docs/promotion.md).

GitHub is the fake from `tests.fakes.github_server` (real HTTP, PyGithub on our side); webhooks
are signed deliveries through the real view; promotion runs eagerly when the merge commits.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from releases.integrations import buckets
from releases.integrations import github as github_api
from releases.models import AuditEvent, BuildStatus, ReleaseRequest, ReleaseState
from tests.fakes.github_server import start_github_server
from tests.notify_support import work_queued
from tests.promotion_support import (
    deliver_github,
    merge_with_webhook,
    merged_event,
    open_release_pr,
    production_contents,
    push_event,
    stage_build,
    use_fake_github,
)

pytestmark = pytest.mark.django_db
BUILD = "250210vv2q75v93"


@pytest.fixture(scope="module")
def github_server():
    server = start_github_server()
    yield server
    server.stop()


@pytest.fixture
def gh(github_server, settings):
    use_fake_github(settings, github_server)
    github_server.gh.reset(files={"desktop-builds.json": "[]\n"})
    return github_server.gh


def test_a_merge_makes_production_equal_staging_and_the_default_branch(
    client, gh, any_buckets, django_capture_on_commit_callbacks
):
    build, files = stage_build(BUILD, "1.2.0")
    release = open_release_pr(gh, build, rules={"latestReleaseBuildId": BUILD})

    merge_with_webhook(client, gh, release, django_capture_on_commit_callbacks)

    contents = production_contents()
    assert {name: contents.get(name) for name in files} == files
    assert contents["desktop-builds.json"] == gh.file("desktop-builds.json").encode()
    assert contents["desktop-releases.json"] == gh.file("desktop-releases.json").encode()
    release.refresh_from_db()
    build.refresh_from_db()
    assert release.state == ReleaseState.LIVE and release.merged_by == "grace"
    assert release.live_at >= release.merged_at
    assert build.status == BuildStatus.LIVE and build.live_at is not None
    live = AuditEvent.objects.get(kind="release.live", release=release)
    assert live.actor == "grace" and "merged by grace" in live.message


def test_a_push_that_edits_only_the_release_rules_writes_only_that_file(
    client, gh, fs_buckets, django_capture_on_commit_callbacks
):
    build, _ = stage_build(BUILD, "1.2.0")
    release = open_release_pr(gh, build, rules={"latestReleaseBuildId": BUILD})
    merge_with_webhook(client, gh, release, django_capture_on_commit_callbacks)
    before = production_contents()
    mac_rule = {"rule": "buildByPlatform", "buildId": BUILD, "platforms": ["mac"]}
    rules = {"latestReleaseBuildId": BUILD, "releaseRedirections": [mac_rule]}
    rollback = json.dumps(rules, indent=2)
    gh.commit("main", {"desktop-releases.json": rollback}, "Mac users follow this build too")

    with django_capture_on_commit_callbacks(execute=True):
        deliver_github(client, "push", push_event(gh, files=["desktop-releases.json"]))

    after = production_contents()
    assert after["desktop-releases.json"] == rollback.encode()
    assert {k: v for k, v in after.items() if k != "desktop-releases.json"} == {
        k: v for k, v in before.items() if k != "desktop-releases.json"
    }
    done = AuditEvent.objects.filter(kind="promotion.succeeded").last()
    assert done.data["copied"] == 0 and done.data["written"] == ["desktop-releases.json"]


def test_closed_without_merge_promotes_nothing(
    client, gh, fs_buckets, django_capture_on_commit_callbacks
):
    build, files = stage_build(BUILD, "1.2.0")
    release = open_release_pr(gh, build)
    gh.close(release.pr_number)
    payload = {**merged_event(gh, release.pr_number), "sender": gh._user_json("ada")}

    with django_capture_on_commit_callbacks(execute=True) as queued:
        deliver_github(client, "pull_request", payload)
    call_command("reconcile", stdout=StringIO())

    release.refresh_from_db()
    assert release.state == ReleaseState.CLOSED and work_queued(queued) == []
    assert not set(files) & set(production_contents())


def test_reconcile_repairs_a_missed_merge_webhook_then_reports_in_sync(gh, fs_buckets):
    build, files = stage_build(BUILD, "1.2.0")
    release = open_release_pr(gh, build, rules={"latestReleaseBuildId": BUILD})
    gh.review(release.pr_number, user="ada")
    gh.merge(release.pr_number, merged_by="grace")  # ... and the webhook never arrives

    plan = StringIO()
    call_command("reconcile", "--dry-run", stdout=plan)
    assert "would copy" in plan.getvalue() and production_contents() == {}

    repair = StringIO()
    call_command("reconcile", stdout=repair)

    assert "repaired" in repair.getvalue()
    contents = production_contents()
    assert all(contents[name] == data for name, data in files.items())
    assert contents["desktop-builds.json"] == gh.file("desktop-builds.json").encode()
    release.refresh_from_db()
    assert release.state == ReleaseState.LIVE
    assert release.merged_by == "grace"  # taken from GitHub, as the webhook never said it
    assert release.merged_at is not None
    live = AuditEvent.objects.get(kind="release.live", release=release)
    assert live.actor == "grace" and "merged by grace" in live.message
    assert AuditEvent.objects.filter(kind="reconcile.repaired").count() == 1
    again = StringIO()
    call_command("reconcile", stdout=again)
    assert again.getvalue().strip().endswith("in sync")
    assert AuditEvent.objects.filter(kind="reconcile.repaired").count() == 1


def test_reconcile_repairs_a_production_file_changed_behind_our_back(gh, fs_buckets):
    build, _ = stage_build(BUILD, "1.2.0")
    release = open_release_pr(gh, build, rules={"latestReleaseBuildId": BUILD})
    gh.review(release.pr_number, user="ada")
    gh.merge(release.pr_number)
    call_command("reconcile", stdout=StringIO())
    production = buckets.production(role="promoter")
    production.write_bytes("desktop-releases.json", b'{"latestReleaseBuildId": "tampered"}')

    out = StringIO()
    call_command("reconcile", stdout=out)

    assert "write desktop-releases.json" in out.getvalue()
    assert (
        production.read_bytes("desktop-releases.json") == gh.file("desktop-releases.json").encode()
    )


def test_a_release_of_a_pull_request_that_was_not_merged_stays_in_review(gh, fs_buckets):
    build, _ = stage_build(BUILD, "1.2.0")
    merged = open_release_pr(gh, build)
    gh.branch_create("release-build-x-1", files={"README.md": "x"})
    pull = github_api.pull_open(title="another", body="", head="release-build-x-1", base="main")
    other = ReleaseRequest.objects.create(
        build=build, state=ReleaseState.IN_REVIEW, pr_number=pull.number, branch="release-build-x-1"
    )
    gh.review(merged.pr_number, user="ada")
    gh.merge(merged.pr_number)

    call_command("reconcile", stdout=StringIO())

    merged.refresh_from_db()
    other.refresh_from_db()
    assert merged.state == ReleaseState.LIVE
    assert other.state == ReleaseState.IN_REVIEW


def test_an_unreachable_github_fails_the_promotion_and_changes_nothing(gh, fs_buckets):
    stage_build(BUILD, "1.2.0")
    gh.fail(401, times=None)

    with pytest.raises(CommandError, match="cannot read the default branch"):
        call_command("reconcile", stdout=StringIO())

    assert production_contents() == {}
    assert "GitHub 401" in AuditEvent.objects.get(kind="promotion.failed").message


def test_a_lasting_github_outage_is_recorded_once_not_on_every_reconcile(gh, fs_buckets):
    gh.fail(401, times=None)

    for _ in range(3):
        with pytest.raises(CommandError):
            call_command("reconcile", stdout=StringIO())

    assert AuditEvent.objects.filter(kind="promotion.failed").count() == 1
