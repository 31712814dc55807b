"""Findings of the security review of the internet-facing and trust-critical paths.

Each test pins one defect that was found and fixed: odd but signed GitHub bodies, pull requests
from forks, unverified files on the way to production, control files among a build's files.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from pathlib import Path

import pytest

from releases.control_files import BUILDS_FILE
from releases.integrations import buckets
from releases.models import (
    AuditEvent,
    Build,
    BuildStatus,
    ReleaseRequest,
    ReleaseState,
    Verification,
    WebhookDelivery,
)
from releases.services.promotion import PromotionFailed, promotion_run
from tests.promotion_support import (
    approve,
    deliver_github,
    production_contents,
    push_event,
    stage_build,
)

pytestmark = pytest.mark.django_db

GITHUB_DATA = Path(__file__).parents[1] / "data" / "github"
SECRET = "gh-webhook-secret"
BRANCH = "release-build-250210vv2q75v93"


@pytest.fixture
def github_settings(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    settings.GITHUB_OWNER = "acme"
    settings.GITHUB_REPO = "desktop-releases"


def github_fixture(name: str) -> dict:
    return json.loads((GITHUB_DATA / name).read_text())


def deliver(client, event: str, payload: dict):
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    client.raise_request_exception = False
    return client.post(
        "/github-webhook",
        body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT=event,
        HTTP_X_GITHUB_DELIVERY=str(uuid.uuid4()),
        HTTP_X_HUB_SIGNATURE_256=signature,
    )


@pytest.fixture
def in_review(github_settings):
    """A release whose PR #12 is open, and a failed one whose branch exists but has no PR."""
    build = Build.objects.create(
        build_id="250210vv2q75v93", app_id="app1", status=BuildStatus.IN_REVIEW
    )
    opened = ReleaseRequest.objects.create(
        build=build, state=ReleaseState.IN_REVIEW, branch=BRANCH, pr_number=12
    )
    other = Build.objects.create(build_id="250211ww", app_id="app1", status=BuildStatus.STAGED)
    unopened = ReleaseRequest.objects.create(
        build=other, state=ReleaseState.FAILED, branch="release-build-250211ww"
    )
    return opened, unopened


def _pr(**changes) -> dict:
    payload = github_fixture("pull_request.closed.unmerged.json")
    payload["pull_request"].update(changes)
    return payload


def _merged(**changes) -> dict:
    payload = github_fixture("pull_request.closed.merged.json")
    payload["pull_request"].update(changes)
    return payload


def _review(**changes) -> dict:
    payload = github_fixture("pull_request_review.submitted.approved.json")
    payload.update(changes)
    return payload


def _push(**changes) -> dict:
    payload = github_fixture("push.default_branch.json")
    payload.update(changes)
    return payload


ODD_BODIES = {
    "a PR number that is text": ("pull_request", _pr(number="12")),
    "a PR number that is an object": ("pull_request", _pr(number={"n": 12})),
    "a PR number that is null": ("pull_request", _pr(number=None)),
    "a PR number of zero": ("pull_request", _pr(number=0)),
    "a PR number past a database integer": ("pull_request", _pr(number=2**40)),
    "a pull_request that is a string": ("pull_request", {**_pr(), "pull_request": "x"}),
    "a repository that is a string": ("pull_request", {**_pr(), "repository": "acme/x"}),
    "merged_by that is a string": ("pull_request", _merged(merged_by="grace")),
    "merged_at that is not a date": ("pull_request", _merged(merged_at="2025-13-45T00:00:00Z")),
    "merged that is a string": ("pull_request", _merged(merged="yes")),
    "a review that is a string": ("pull_request_review", _review(review="approved")),
    "a review user that is a list": ("pull_request_review", _review(review={"user": []})),
    "commits that are a string": ("push", _push(commits="x")),
    "commits that are numbers": ("push", _push(commits=[1, 2])),
    "added files that are a number": ("push", _push(commits=[{"added": 5}])),
    "a head_commit that is a string": ("push", _push(head_commit="x")),
    "a pusher that is a string": ("push", _push(pusher="grace")),
    "a sender login of 300 characters": ("push", _push(sender={"login": "x" * 300})),
    "an unmirrored event with a string repository": ("issues", {"repository": "x"}),
}


@pytest.mark.parametrize("event, payload", ODD_BODIES.values(), ids=ODD_BODIES.keys())
def test_a_signed_github_body_of_the_wrong_shape_is_a_400_that_changes_nothing(
    client, in_review, event, payload, django_capture_on_commit_callbacks
):
    opened, unopened = in_review

    with django_capture_on_commit_callbacks(execute=False) as queued:
        answer = deliver(client, event, payload)

    assert answer.status_code == 400 and "invalid" in answer.json()["error"]
    assert not WebhookDelivery.objects.exists() and not AuditEvent.objects.exists()
    assert not queued
    opened.refresh_from_db()
    unopened.refresh_from_db()
    assert opened.state == ReleaseState.IN_REVIEW and unopened.state == ReleaseState.FAILED
    assert unopened.pr_number is None


def test_a_pull_request_from_a_fork_never_claims_a_release_by_its_branch_name(client, in_review):
    _, unopened = in_review
    payload = _pr(number=77)
    payload["pull_request"]["head"]["ref"] = unopened.branch
    payload["pull_request"]["head"]["repo"] = copy.deepcopy(payload["repository"])
    payload["pull_request"]["head"]["repo"]["full_name"] = "mallory/desktop-releases"

    answer = deliver(client, "pull_request", payload)

    assert answer.status_code == 200 and answer.json()["handled"] is False
    unopened.refresh_from_db()
    assert unopened.state == ReleaseState.FAILED and unopened.pr_number is None
    assert Build.objects.get(pk=unopened.build_id).status == BuildStatus.STAGED


def test_a_pull_request_from_a_deleted_fork_never_claims_a_release(client, in_review):
    _, unopened = in_review
    payload = _pr(number=78)
    payload["pull_request"]["head"].update(ref=unopened.branch, repo=None)

    answer = deliver(client, "pull_request", payload)

    assert answer.json()["handled"] is False
    unopened.refresh_from_db()
    assert unopened.state == ReleaseState.FAILED and unopened.pr_number is None


def test_a_link_longer_than_the_audit_column_is_recorded_without_it(client, in_review):
    opened, _ = in_review
    long_url = "https://github.com/acme/desktop-releases/pull/12#" + "x" * 600

    answer = deliver(client, "pull_request", _pr(html_url=long_url))

    assert answer.status_code == 200 and answer.json()["handled"] is True
    opened.refresh_from_db()
    assert opened.state == ReleaseState.CLOSED
    assert AuditEvent.objects.get(kind="github.pr_closed").url == ""


# --- Promotion: only files that passed staging verification reach production --------------


def test_a_push_listing_a_build_that_never_passed_verification_promotes_nothing(
    client, settings, fake_github, fs_buckets, django_capture_on_commit_callbacks
):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    # Staging wrote every file, then failed before verifying them (a build that never passed).
    build, _ = stage_build("halfway1", "2.0.0")
    build.files.update(verification=Verification.PENDING)
    Build.objects.filter(pk=build.pk).update(status=BuildStatus.FAILED)
    entry = {"id": "halfway1", "version": "2.0.0", "createdAt": "2025-02-10T10:00:00Z"}
    fake_github.commit("main", {"desktop-builds.json": json.dumps([entry])}, "add by hand")

    with django_capture_on_commit_callbacks(execute=True):
        answer = deliver_github(client, "push", push_event(fake_github, files=[BUILDS_FILE]))

    assert answer.status_code == 200 and answer.json()["handled"] is True
    assert production_contents() == {}
    failed = AuditEvent.objects.get(kind="promotion.failed", build=build)
    assert "never verified" in failed.message


def test_a_file_staging_never_recorded_is_never_promoted(fs_buckets):
    build, _ = stage_build("extra1", "2.0.0")
    approve(build)
    buckets.staging().write_bytes("extra1/Setup-evil.exe", b"not from ToDesktop")

    with pytest.raises(PromotionFailed, match="not recorded by staging"):
        promotion_run(reason="approved")

    assert production_contents() == {}


def test_a_file_that_changed_size_in_staging_after_verification_is_never_promoted(fs_buckets):
    build, files = stage_build("swap1", "2.0.0")
    approve(build)
    name = next(iter(files))
    buckets.staging().write_bytes(f"swap1/{name}", files[name] + b"appended")

    with pytest.raises(PromotionFailed, match="changed size"):
        promotion_run(reason="approved")

    assert production_contents() == {}


def test_a_verified_build_is_still_promoted(fs_buckets):
    build, files = stage_build("good1", "2.0.0")
    build.files.filter(name__endswith=".blockmap").update(verification=Verification.UNCHECKED)
    approve(build)

    promotion_run(reason="approved")

    assert all(production_contents()[name] == data for name, data in files.items())


# --- A build's files never include production's control files --------------------------------


@pytest.fixture
def origin(settings, fs_buckets):
    from tests.fakes.todesktop_origin import FakeBuild, start_origin

    server = start_origin(FakeBuild())
    settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    yield server
    server.stop()


@pytest.mark.parametrize("name", ["desktop-releases.json", "desktop-builds.json"])
def test_a_manifest_naming_a_production_control_file_fails_the_build(origin, name):
    from releases.services.staging import build_stage

    fake = origin.build
    td = fake.td_manifest("linux")
    td["artifacts"]["snap"] = {"x64": {"url": f"https://download.todesktop.com/a/{name}"}}
    origin.serve(fake.td_name("linux"), json.dumps(td).encode())
    origin.serve(name, b'{"latestReleaseBuildId": "someone-elses-build"}')
    build = Build.objects.create(build_id=fake.build_id, app_id=fake.app_id)
    release = ReleaseRequest.objects.create(build=build, payload={"buildId": fake.build_id})

    build_stage(release_id=release.pk)

    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and "control file" in build.failure_reason
    assert not [info for info in buckets.staging().list("") if info.key.endswith(name)]
    assert origin.requested(name) == []


def test_a_staged_control_file_is_never_copied_over_production(fs_buckets):
    build, files = stage_build("ctl1", "2.0.0")
    info = buckets.staging().write_bytes("ctl1/desktop-releases.json", b'{"evil": true}')
    build.files.create(
        name="desktop-releases.json", size=info.size, verification=Verification.VERIFIED
    )
    approve(build)

    with pytest.raises(PromotionFailed, match="control file"):
        promotion_run(reason="approved")

    assert production_contents() == {}


@pytest.mark.parametrize("version", ["1." + "9" * 120, "1.2.0\nmerged: true", 120])
def test_a_manifest_version_that_cannot_be_a_version_fails_the_build_visibly(origin, version):
    from releases.services.staging import build_stage

    fake = origin.build
    td = fake.td_manifest("windows")
    td["version"] = version
    origin.serve(fake.td_name("windows"), json.dumps(td).encode())
    build = Build.objects.create(build_id=fake.build_id, app_id=fake.app_id)
    release = ReleaseRequest.objects.create(build=build, payload={"buildId": fake.build_id})

    build_stage(release_id=release.pk)

    build.refresh_from_db()
    release.refresh_from_db()
    assert build.status == BuildStatus.FAILED and "version" in build.failure_reason
    assert release.state == ReleaseState.FAILED and build.version == ""


# --- Start-up errors never print a password ------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"DATABASE_URL": "postgress://release:s3cr3t-pw@db.internal:5432/releases"},
        {"DATABASE_URL": "postgres://release:s3cr3t-pw@db.internal:notaport/releases"},
        {"DATABASE_URL": "mysql://release:s3cr3t@pw@db.internal/releases"},
        {"CELERY_BROKER_URL": "redis:/:s3cr3t-pw@redis.internal:6379/0"},
        {"CACHE_URL": "redis2://:s3cr3t-pw@cache.internal/1"},
    ],
)
def test_a_start_up_error_names_the_variable_but_never_its_password(tmp_path, env):
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    clean.update({"DATA_DIR": str(tmp_path), **env})
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parents[2],
        env=clean,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 2
    assert result.stderr.startswith(f"configuration error: {next(iter(env))}: ")
    assert "s3cr3t" not in result.stderr + result.stdout and "***" in result.stderr
