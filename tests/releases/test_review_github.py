"""docs/review.md, GitHub backend: the release pull request, through PyGithub against the fake
GitHub."""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from releases.models import (
    AuditEvent,
    Build,
    BuildFile,
    BuildStatus,
    ReleaseRequest,
    ReleaseState,
    Verification,
)
from releases.services.review import review_open

pytestmark = pytest.mark.django_db

WEBHOOK = json.loads(
    (Path(__file__).parents[1] / "data" / "todesktop-release-webhook.json").read_text()
)
BUILD_ID = WEBHOOK["buildId"]
BRANCH = f"release-build-{BUILD_ID}"
REMOTE = "https://github.com/ToDesktop/todesktop-builder"
EXE = f"ToDesktop Builder Staging Setup 4.27.0 - Build {BUILD_ID}-x64.exe"
STAGED_AT = datetime(2025, 2, 10, 13, 20, 1, tzinfo=UTC)
FILES = [
    (EXE, 89_330_123, Verification.VERIFIED),
    (f"{EXE}.blockmap", 93_412, Verification.UNCHECKED),
    (f"latest-build-{BUILD_ID}.yml", 512, Verification.VERIFIED),
]


def staged_release(*, release_info: object = "webhook", pk: int | None = None) -> ReleaseRequest:
    """A build staged and verified, and its release request awaiting review."""
    build = Build.objects.filter(build_id=BUILD_ID).first()
    if build is None:
        build = Build.objects.create(
            pk=pk,
            build_id=BUILD_ID,
            app_id=WEBHOOK["appId"],
            version=WEBHOOK["appVersion"],
            platforms=["windows"],
            status=BuildStatus.STAGED,
            staged_at=STAGED_AT,
        )
        for number, (name, size, verification) in enumerate(FILES):
            BuildFile.objects.create(
                build=build,
                name=name,
                size=size,
                sha512=f"{number}" * 128,
                sha256=f"{number + 5}" * 64,
                verification=verification,
                staged_at=STAGED_AT,
            )
    payload = copy.deepcopy(WEBHOOK)
    if release_info != "webhook":
        payload.pop("releaseInfo")
        if release_info is not None:
            payload["releaseInfo"] = release_info
    release = ReleaseRequest.objects.create(
        pk=pk,
        build=build,
        payload=payload,
        release_info=payload.get("releaseInfo"),
        state=ReleaseState.AWAITING_REVIEW,
    )
    ReleaseRequest.objects.filter(pk=release.pk).update(
        created_at=datetime(2025, 2, 10, 13, 25, 0, 123000, tzinfo=UTC)
    )
    release.refresh_from_db()
    return release


def opened(release: ReleaseRequest) -> ReleaseRequest:
    review_open(release=release)
    release.refresh_from_db()
    return release


def entry(**overrides) -> dict:
    return {
        "id": BUILD_ID,
        "version": "4.27.0",
        "createdAt": "2025-02-10T13:25:00.123Z",
        "isReleased": True,
        **overrides,
    }


def test_it_opens_one_pr_on_a_repository_without_the_json_files(fake_github):
    release = opened(staged_release())

    assert release.state == ReleaseState.IN_REVIEW
    assert release.branch == BRANCH
    assert release.pr_number == 1
    assert release.pr_url == f"{fake_github.web_url}/acme/desktop-releases/pull/1"
    assert release.build.status == BuildStatus.IN_REVIEW
    files = fake_github.files(BRANCH)
    assert json.loads(files["desktop-builds.json"]) == [entry()]
    assert json.loads(files["desktop-releases.json"]) == WEBHOOK["releaseInfo"]
    assert files["desktop-builds.json"] == json.dumps([entry()], indent=2) + "\n"
    assert fake_github.history(BRANCH) == [
        "Release v4.27.0 in desktop-releases.json",
        f"Add build {BUILD_ID} (v4.27.0) to desktop-builds.json",
    ]
    (pull,) = fake_github.pulls()
    assert pull["title"] == f"[release] Add build {BUILD_ID} (v4.27.0)"
    assert (pull["head"]["ref"], pull["base"]["ref"]) == (BRANCH, "main")
    assert "`desktop-builds.json` does not exist on `main` yet" in pull["body"]
    assert "desktop-builds.json" not in fake_github.files("main")
    event = AuditEvent.objects.get(kind="review.pr_opened")
    assert (event.url, event.release_id) == (release.pr_url, release.pk)


def test_it_adds_the_build_to_existing_files_and_keeps_other_keys(fake_github):
    older = entry(id="240101aaaaaaaaa", version="4.26.0")
    rules = [{"rule": "buildByPlatform", "buildId": "240101aaaaaaaaa", "platforms": ["mac"]}]
    fake_github.commit(
        "main",
        {
            "desktop-builds.json": json.dumps([older]),
            "desktop-releases.json": json.dumps(
                {
                    "latestReleaseBuildId": "240101aaaaaaaaa",
                    "releaseRedirections": rules,
                    "team": "x",
                }
            ),
        },
        "seed",
    )
    info = {"latestReleaseBuildId": BUILD_ID}
    opened(staged_release(release_info=info))

    files = fake_github.files(BRANCH)
    assert json.loads(files["desktop-builds.json"]) == [older, entry()]
    assert json.loads(files["desktop-releases.json"]) == {
        "latestReleaseBuildId": BUILD_ID,
        "releaseRedirections": rules,
        "team": "x",
    }
    assert "### Notes" not in fake_github.pulls()[0]["body"]


def test_an_entry_with_the_same_build_id_is_replaced_not_duplicated(fake_github):
    before = [entry(id="a1"), entry(version="0.0.1", isReleased=False), entry(id="b2")]
    fake_github.commit("main", {"desktop-builds.json": json.dumps(before)}, "seed")
    opened(staged_release())

    builds = json.loads(fake_github.file("desktop-builds.json", BRANCH))
    assert builds == [entry(id="a1"), entry(), entry(id="b2")]


def test_an_invalid_json_file_starts_fresh_and_the_pr_body_says_so(fake_github):
    fake_github.commit("main", {"desktop-builds.json": "[{oops"}, "broken")
    opened(staged_release())

    assert json.loads(fake_github.file("desktop-builds.json", BRANCH)) == [entry()]
    body = fake_github.pulls()[0]["body"]
    assert "⚠️ `desktop-builds.json` on `main` is not valid JSON" in body
    assert "starts it again from `[]`" in body


def test_a_taken_branch_name_gets_1_and_then_2(fake_github):
    fake_github.branch_create(BRANCH, files={"notes.txt": "someone else's"})
    first = opened(staged_release())
    second = opened(staged_release(release_info={"latestReleaseBuildId": BUILD_ID}))

    assert (first.branch, second.branch) == (f"{BRANCH}-1", f"{BRANCH}-2")
    assert [p["head"]["ref"] for p in fake_github.pulls()] == [f"{BRANCH}-1", f"{BRANCH}-2"]
    assert fake_github.file("notes.txt", BRANCH) == "someone else's"


def test_without_release_info_only_desktop_builds_json_changes(fake_github):
    releases = json.dumps({"latestReleaseBuildId": "240101aaaaaaaaa"})
    fake_github.commit("main", {"desktop-releases.json": releases}, "seed")
    opened(staged_release(release_info=None))

    assert fake_github.file("desktop-releases.json", BRANCH) == releases
    assert fake_github.history(BRANCH) == [f"Add build {BUILD_ID} (v4.27.0) to desktop-builds.json"]
    assert "`desktop-releases.json` is not changed" in fake_github.pulls()[0]["body"]


def test_the_pr_body_has_every_field_every_file_with_its_mark_and_the_admin_link(fake_github):
    release = opened(staged_release())
    body = fake_github.pulls()[0]["body"]

    commit = WEBHOOK["versionControlInfo"]["commitId"]
    for expected in [
        "| App version | 4.27.0 |",
        "| Electron version | 33.3.2 |",
        f"| Commit | [`{commit[:8]}`]({REMOTE}/commit/{commit}) |",
        "| Build started | 2025-02-10 13:00:25 UTC |",
        "| Build ended | 2025-02-10 13:15:06 UTC |",
        "| Uncommitted changes | ⚠️ yes |",
        f"under the prefix `{BUILD_ID}/`",
        f"https://releases.example.com/admin/releases/build/{release.build.pk}/change/",
        "### What merging does",
    ]:
        assert expected in body
    for name, size, verification in FILES:
        mark = "✓" if verification == Verification.VERIFIED else "—"
        row = next(line for line in body.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"| {mark} | 2025-02-10 13:20:01 UTC |" in row
        assert f"{size:,} bytes" in row
    assert "sha512 `" + "0" * 128 + "`<br>sha256 `" + "5" * 64 + "`" in body


def test_a_commit_on_another_host_is_shown_without_a_link(fake_github):
    release = staged_release()
    release.payload["versionControlInfo"]["repositoryRemoteUrl"] = "https://gitlab.com/a/b.git"
    release.save()
    opened(release)
    assert "| Commit | `dfd155b0` |" in fake_github.pulls()[0]["body"]


def test_the_full_pr_body_matches_its_snapshot(fake_github):
    opened(staged_release(pk=990_001))
    body = fake_github.pulls()[0]["body"]
    snapshot = Path(__file__).parents[1] / "data" / "snapshots" / "release_pr_body.md"
    if os.environ.get("UPDATE_SNAPSHOTS"):  # rewrite it, then review the diff before committing
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(body)
    assert body == snapshot.read_text()
