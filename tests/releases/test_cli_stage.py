"""`manage.py stage` (docs/cli.md): a build staged by hand from the fake ToDesktop origin over
HTTP."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from releases.integrations import buckets
from releases.models import (
    AuditEvent,
    Build,
    BuildFile,
    BuildStatus,
    ReleaseRequest,
    ReleaseState,
    Verification,
)
from releases.services.manual import ManualStageError, manual_stage
from tests.fakes.todesktop_origin import FakeBuild, start_origin

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fs_buckets")]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def origin(settings):
    server = start_origin(FakeBuild())
    settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
    settings.TODESKTOP_APP_ID = server.build.app_id
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    settings.HTTP_MAX_RETRIES = 2
    settings.STAGING_CONCURRENCY = 3
    settings.REVIEW_BACKEND = "admin"
    yield server
    server.stop()


def stage(*args: str, stdout=None) -> str:
    out = stdout or io.StringIO()
    call_command("stage", *args, stdout=out)
    return out.getvalue()


def staged_names(build_id: str) -> set[str]:
    return {i.key.removeprefix(f"{build_id}/") for i in buckets.staging().list(f"{build_id}/")}


def platform_names(fake: FakeBuild, platform: str) -> set[str]:
    names = {fake.td_name(platform), fake.yml_name(platform)}
    for arches in fake.layout[platform].values():
        for name in arches.values():
            names.add(name)
            if name in fake.blockmapped:
                names.add(f"{name}.blockmap")
    return names


def no_rows() -> bool:
    return not (
        Build.objects.exists() or ReleaseRequest.objects.exists() or AuditEvent.objects.exists()
    )


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_it_stages_a_whole_build_with_verified_files_and_opens_the_review(origin):
    fake = origin.build
    output = stage(fake.build_id)

    build = Build.objects.get(build_id=fake.build_id)
    assert build.status == BuildStatus.IN_REVIEW
    assert build.platforms == ["windows", "mac", "linux"]
    assert staged_names(fake.build_id) == fake.all_names()
    exe = fake.layout["windows"]["nsis"]["x64"]
    row = BuildFile.objects.get(build=build, name=exe)
    assert row.verification == Verification.VERIFIED
    assert row.sha256 == fake.files[exe].hashes["sha256"]
    release = ReleaseRequest.objects.get(build=build)
    assert release.kind == "release"
    assert release.state == ReleaseState.IN_REVIEW
    assert release.payload == {
        "appId": fake.app_id,
        "buildId": fake.build_id,
        "appVersion": "1.2.0",
    }
    verified = build.files.filter(verification=Verification.VERIFIED).count()
    assert verified == len(fake.artifact_names)
    assert f"staged build {fake.build_id} (v1.2.0) for windows, mac, linux" in output
    assert f"{verified} verified against the manifests" in output
    assert f"/admin/releases/releaserequest/{release.pk}/change/" in output
    assert f"  staged: {exe}\n" in output


def test_it_records_who_staged_the_build_in_the_audit_trail(origin):
    stage(origin.build.build_id, "--quiet")
    event = AuditEvent.objects.get(kind="manual.stage")
    assert event.actor.endswith("(manage.py stage)")
    assert event.actor.startswith(os.environ.get("USER") or event.actor.split()[0])
    assert event.release.build.build_id == origin.build.build_id
    kinds = list(AuditEvent.objects.values_list("kind", flat=True))
    assert kinds.index("manual.stage") < kinds.index("staging.started")
    assert "review.awaiting_approval" in kinds


def test_platform_flags_limit_what_is_fetched_from_the_origin(origin):
    fake = origin.build
    stage(fake.build_id, "--mac", "--linux", "--quiet")

    requested = {entry.name for entry in origin.log}
    assert fake.td_name("windows") not in requested
    assert fake.yml_name("windows") not in requested
    assert not requested & platform_names(fake, "windows")
    assert platform_names(fake, "mac") | platform_names(fake, "linux") <= requested
    assert staged_names(fake.build_id) == platform_names(fake, "mac") | platform_names(
        fake, "linux"
    )
    assert Build.objects.get(build_id=fake.build_id).platforms == ["mac", "linux"]


def test_one_platform_flag_stages_that_platform_only(origin):
    fake = origin.build
    output = stage(fake.build_id, "--windows")
    assert staged_names(fake.build_id) == platform_names(fake, "windows")
    assert "for windows:" in output


@pytest.mark.parametrize("bad", ["../etc", "a/b", "x" * 65, "id with space", ""])
def test_a_malformed_build_id_is_an_error_that_stores_and_fetches_nothing(origin, bad):
    with pytest.raises(CommandError, match="buildId"):
        stage(bad)
    assert no_rows()
    assert origin.log == []


def test_a_build_unknown_to_todesktop_is_an_error_that_stores_nothing(origin):
    with pytest.raises(CommandError, match="unknown build .* 404"):
        stage("250101nosuchbuild")
    assert no_rows()


def test_a_platform_the_build_lacks_is_an_error_that_stores_nothing(settings):
    server = start_origin(FakeBuild(platforms=("windows",)))
    try:
        settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
        settings.TODESKTOP_APP_ID = server.build.app_id
        with pytest.raises(CommandError, match=r"mac: 404"):
            stage(server.build.build_id, "--mac")
    finally:
        server.stop()
    assert no_rows()


def test_an_unreachable_origin_is_a_clear_error_that_stores_nothing(origin, settings):
    settings.TODESKTOP_DOWNLOAD_BASE_URL = closed_port_url()
    with pytest.raises(CommandError, match="cannot reach ToDesktop at http://127.0.0.1:"):
        stage(origin.build.build_id)
    assert no_rows()


def test_an_origin_answering_500s_is_retried_then_a_clear_error(origin):
    fake = origin.build
    origin.fail(fake.td_name("windows"), times=10)
    with pytest.raises(CommandError, match="cannot reach ToDesktop.*HTTP 500"):
        stage(fake.build_id)
    assert len(origin.requested(fake.td_name("windows"))) == 3  # 1 + HTTP_MAX_RETRIES
    assert no_rows()


def test_a_failed_verification_is_an_error_and_opens_no_review(origin):
    fake = origin.build
    corrupted = fake.layout["linux"]["deb"]["x64"]
    origin.corrupt(corrupted)
    with pytest.raises(CommandError) as error:
        stage(fake.build_id, "--quiet")
    message = str(error.value)
    assert "\n" not in message
    assert f"build {fake.build_id} failed: verification failed: {corrupted}: sha256" in message
    assert fake.files[corrupted].hashes["sha256"] in message
    build = Build.objects.get(build_id=fake.build_id)
    assert build.status == BuildStatus.FAILED
    assert ReleaseRequest.objects.get(build=build).state == ReleaseState.FAILED
    assert not AuditEvent.objects.filter(kind__startswith="review.").exists()


def test_staging_a_failed_build_again_by_hand_retries_it(origin):
    fake = origin.build
    corrupted = fake.layout["mac"]["dmg"]["x64"]
    origin.corrupt(corrupted)
    with pytest.raises(CommandError):
        stage(fake.build_id, "--quiet")
    del origin._corrupt[corrupted]  # ToDesktop serves the right bytes again

    output = stage(fake.build_id, "--quiet")
    assert "staged build" in output
    build = Build.objects.get(build_id=fake.build_id)
    assert build.status == BuildStatus.IN_REVIEW
    assert build.files.filter(verification=Verification.MISMATCH).count() == 0
    states = set(ReleaseRequest.objects.values_list("state", flat=True))
    assert states == {ReleaseState.FAILED, ReleaseState.IN_REVIEW}
    assert "after it had failed" in AuditEvent.objects.filter(kind="manual.stage").last().message


def test_no_review_stages_and_leaves_the_release_awaiting_review(origin):
    output = stage(origin.build.build_id, "--no-review", "--quiet")
    build = Build.objects.get(build_id=origin.build.build_id)
    assert build.status == BuildStatus.STAGED
    release = ReleaseRequest.objects.get(build=build)
    assert release.state == ReleaseState.AWAITING_REVIEW
    assert AuditEvent.objects.filter(kind="review.deferred", release=release).exists()
    assert not AuditEvent.objects.filter(kind="review.awaiting_approval").exists()
    assert "review not opened (--no-review)" in output


def test_version_and_release_info_are_recorded_like_a_webhook(origin):
    fake = origin.build
    info = json.dumps({"latestReleaseBuildId": fake.build_id})
    stage(fake.build_id, "--version", "1.2.0", "--release-info", info, "--quiet")
    release = ReleaseRequest.objects.get()
    assert release.release_info == {"latestReleaseBuildId": fake.build_id}
    assert release.payload["appVersion"] == "1.2.0"
    assert release.payload["releaseInfo"] == {"latestReleaseBuildId": fake.build_id}


def test_a_version_other_than_the_manifests_is_an_error_that_stores_nothing(origin):
    with pytest.raises(CommandError, match="--version 9.9.9: the manifests say 1.2.0"):
        stage(origin.build.build_id, "--version", "9.9.9")
    assert no_rows()


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ("{not json", "--release-info is not JSON"),
        ("[1]", "must be a JSON object"),
        ('{"releaseRedirections": [{"rule": "nope"}]}', "releaseInfo.releaseRedirections"),
        ('{"latestReleaseBuildId": "../x"}', "releaseInfo.latestReleaseBuildId"),
    ],
)
def test_malformed_release_info_is_an_error_that_stores_and_fetches_nothing(origin, info, message):
    with pytest.raises(CommandError, match=message.replace(".", r"\.")):
        stage(origin.build.build_id, "--release-info", info)
    assert no_rows()
    assert origin.log == []


def test_without_an_app_id_it_says_what_to_set(origin, settings):
    settings.TODESKTOP_APP_ID = ""
    with pytest.raises(CommandError, match="TODESKTOP_APP_ID is not set"):
        stage(origin.build.build_id)
    assert no_rows()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_it_draws_byte_progress_bars(origin):
    screen = Terminal()
    stage(origin.build.build_id, "--linux", stdout=screen)
    drawn = screen.getvalue()
    assert "whole build" in drawn
    assert "100%" in drawn
    assert "staged: " not in drawn  # the bars replace the per-file lines


def test_quiet_on_a_terminal_draws_no_bars(origin):
    screen = Terminal()
    stage(origin.build.build_id, "--linux", "--quiet", stdout=screen)
    assert "whole build" not in screen.getvalue()
    assert screen.getvalue().startswith("staged build")


def test_the_service_reports_the_plan_before_any_byte_moves(origin):
    seen: list[tuple] = []

    class Observer:
        def say(self, message):
            seen.append(("say", message))

        def planned(self, *, sizes):
            seen.append(("planned", len(sizes)))

        def file_started(self, name, size):
            seen.append(("started", name))

        def file_advanced(self, name, count):
            pass

        def file_finished(self, name, *, skipped):
            seen.append(("finished", name))

    staged = manual_stage(build_id=origin.build.build_id, actor="tester", observer=Observer())
    events = [kind for kind, _ in seen]
    assert events.index("planned") < events.index("started")
    assert ("planned", len(origin.build.artifact_names)) in seen
    assert staged.files == len(origin.build.all_names())
    with pytest.raises(ManualStageError):
        manual_stage(build_id="no/such", actor="tester")


def test_as_a_process_an_error_is_one_line_and_a_non_zero_exit(tmp_path):
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TODESKTOP_APP_ID": "240808w4a9kky77",
        "TODESKTOP_DOWNLOAD_BASE_URL": closed_port_url(),
        "HTTP_MAX_RETRIES": "1",
        "HTTP_RETRY_BACKOFF_SECONDS": "0.01",
    }
    for build_id in ("bad/id", "250210vv2q75v93"):
        done = subprocess.run(
            [sys.executable, "manage.py", "stage", build_id, "--quiet"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "cannot reach ToDesktop" in done.stderr


def test_with_the_github_backend_it_opens_the_release_pull_request(origin, fake_github):
    fake = origin.build
    info = json.dumps({"latestReleaseBuildId": fake.build_id})
    output = stage(fake.build_id, "--release-info", info, "--quiet")

    (pull,) = fake_github.pulls()
    assert pull["title"] == f"[release] Add build {fake.build_id} (v1.2.0)"
    branch = pull["head"]["ref"]
    assert branch == f"release-build-{fake.build_id}"
    builds = json.loads(fake_github.file("desktop-builds.json", branch))
    assert [b["id"] for b in builds] == [fake.build_id]
    releases = json.loads(fake_github.file("desktop-releases.json", branch))
    assert releases["latestReleaseBuildId"] == fake.build_id
    release = ReleaseRequest.objects.get()
    assert release.state == ReleaseState.IN_REVIEW
    assert f"review: pull request #{pull['number']} {release.pr_url}" in output
