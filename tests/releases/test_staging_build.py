"""Staging a build (docs/staging.md): fake ToDesktop origin over HTTP → real buckets, real
PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from releases.errors import TransientError
from releases.integrations import buckets
from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services.staging import build_stage
from tests.fakes.todesktop_origin import FakeBuild, FakeOrigin, start_origin

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fs_buckets")]


@pytest.fixture
def origin_for(settings):
    started: list[FakeOrigin] = []

    def start(build: FakeBuild | None = None) -> FakeOrigin:
        server = start_origin(build or FakeBuild())
        settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
        started.append(server)
        return server

    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    settings.HTTP_MAX_RETRIES = 3
    settings.STAGING_CONCURRENCY = 3
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def origin(origin_for):
    return origin_for()


def make_release(fake: FakeBuild, **build_fields) -> ReleaseRequest:
    build, _ = Build.objects.get_or_create(
        build_id=fake.build_id, defaults={"app_id": fake.app_id, **build_fields}
    )
    return ReleaseRequest.objects.create(build=build, payload={"buildId": fake.build_id})


def staged_names(build_id: str) -> set[str]:
    return {
        info.key.removeprefix(f"{build_id}/") for info in buckets.staging().list(f"{build_id}/")
    }


def expected_names(fake: FakeBuild) -> set[str]:
    return set(fake.documents()) | set(fake.files)


def kinds(build: Build) -> list[str]:
    return list(AuditEvent.objects.filter(build=build).values_list("kind", flat=True))


def test_it_stages_and_verifies_every_file_of_a_build(any_buckets, origin):
    fake = origin.build
    release = make_release(fake)
    build_stage(release_id=release.pk)

    build = Build.objects.get(pk=release.build_id)
    assert build.status in (BuildStatus.STAGED, BuildStatus.IN_REVIEW)
    assert build.staged_at is not None
    assert build.platforms == ["windows", "mac", "linux"]
    assert build.version == "1.2.0"
    assert staged_names(fake.build_id) == expected_names(fake)
    staging = buckets.staging()
    exe = fake.layout["windows"]["nsis"]["x64"]
    assert exe == f"My App Setup 1.2.0 - Build {fake.build_id}-x64.exe"
    data = staging.read_bytes(f"{fake.build_id}/{exe}")
    assert hashlib.sha256(data).hexdigest() == fake.files[exe].hashes["sha256"]
    td = fake.td_name("mac")
    assert staging.read_bytes(f"{fake.build_id}/{td}") == origin.documents[td]
    files = {row.name: row for row in build.files.all()}
    assert set(files) == expected_names(fake)
    assert files[exe].verification == "verified"
    assert "sha512 matches latest-build-" in files[exe].verification_detail
    assert files[exe].sha512 == fake.files[exe].hashes["sha512_hex"]
    assert files[f"{exe}.blockmap"].verification == "unchecked"
    assert files[td].content_type == "application/json"
    assert files[fake.yml_name("linux")].content_type == "text/yaml"
    assert staging.head(f"{fake.build_id}/{exe}").size == fake.files[exe].size
    events = kinds(build)
    assert events[:2] == ["staging.started", "staging.manifests"]
    assert events.count("staging.file_staged") == len(expected_names(fake))
    assert "staging.verified" in events
    release.refresh_from_db()
    assert release.state in (ReleaseState.IN_REVIEW, ReleaseState.AWAITING_REVIEW)


def test_blockmaps_are_asked_for_every_artifact_but_mac_installers(origin):
    fake = origin.build
    build_stage(release_id=make_release(fake).pk)
    installer = fake.layout["mac"]["installer"]["universal"]
    deb = fake.layout["linux"]["deb"]["x64"]
    assert origin.requested(f"{installer}.blockmap") == []
    assert origin.requested(installer)[0].status == 200
    assert [entry.status for entry in origin.requested(f"{deb}.blockmap")] == [404]
    assert not buckets.staging().exists(f"{fake.build_id}/{deb}.blockmap")


def test_a_corrupted_artifact_fails_the_build_naming_the_file_and_both_hashes(any_buckets, origin):
    fake = origin.build
    appimage = fake.layout["linux"]["appImage"]["x64"]
    origin.corrupt(appimage)
    release = make_release(fake)
    build_stage(release_id=release.pk)

    build = Build.objects.get(pk=release.build_id)
    assert build.status == BuildStatus.FAILED
    reason = build.failure_reason
    assert appimage in reason
    assert f"sha256 expected {fake.files[appimage].hashes['sha256']}, actual " in reason
    assert f"sha512 expected {fake.files[appimage].hashes['sha512']}, actual " in reason
    row = build.files.get(name=appimage)
    assert row.verification == "mismatch"
    assert row.sha256 in reason
    release.refresh_from_db()
    assert release.state == ReleaseState.FAILED
    assert "staging.failed" in kinds(build)
    assert not [k for k in kinds(build) if k.startswith("review.")]


def test_origin_500s_and_dropped_connections_are_retried(any_buckets, origin_for):
    fake = FakeBuild(size=700 * 1024)
    origin = origin_for(fake)
    exe = fake.layout["windows"]["nsis"]["x64"]
    dmg = fake.layout["mac"]["dmg"]["arm64"]
    origin.fail(fake.td_name("windows"), times=2)
    origin.fail(exe, times=3, status=502)
    origin.drop(dmg, after=300 * 1024, times=2)
    release = make_release(fake)
    build_stage(release_id=release.pk)

    build = Build.objects.get(pk=release.build_id)
    assert build.status in (BuildStatus.STAGED, BuildStatus.IN_REVIEW)
    assert [e.status for e in origin.requested(exe)] == [502, 502, 502, 200]
    assert len(origin.requested(dmg)) == 3
    data = buckets.staging().read_bytes(f"{fake.build_id}/{dmg}")
    assert hashlib.sha512(data).hexdigest() == fake.files[dmg].hashes["sha512_hex"]
    assert build.files.get(name=dmg).verification == "verified"


def test_an_origin_that_stays_down_gives_a_task_retry_and_the_next_run_resumes(any_buckets, origin):
    fake = origin.build
    rpm = fake.layout["linux"]["rpm"]["x64"]
    origin.fail(rpm, times=4, status=503)  # one try + 3 retries, all 503
    release = make_release(fake)
    with pytest.raises(TransientError):
        build_stage(release_id=release.pk)
    build = Build.objects.get(pk=release.build_id)
    assert build.status == BuildStatus.RECEIVED  # the claim was given back for the retry
    assert "staging.retrying" in kinds(build)
    done_before = set(build.files.values_list("name", flat=True))
    assert done_before and rpm not in done_before

    origin.log.clear()
    build_stage(release_id=release.pk)
    build.refresh_from_db()
    assert build.status in (BuildStatus.STAGED, BuildStatus.IN_REVIEW)
    fetched_again = {entry.name for entry in origin.log if entry.method == "GET"}
    assert rpm in fetched_again
    assert not (fetched_again & done_before - set(origin.documents))  # only manifests re-read
    assert kinds(build).count("staging.file_staged") == len(expected_names(fake))
    assert staged_names(fake.build_id) == expected_names(fake)


def test_a_redelivered_task_for_a_staged_build_downloads_nothing(origin):
    fake = origin.build
    release = make_release(fake)
    build_stage(release_id=release.pk)
    origin.log.clear()
    build_stage(release_id=release.pk)
    assert origin.log == []
    assert kinds(release.build).count("staging.file_staged") == len(expected_names(fake))


def test_a_re_release_reuses_the_staged_files(any_buckets, origin):
    fake = origin.build
    first = make_release(fake)
    build_stage(release_id=first.pk)
    origin.log.clear()
    second = make_release(fake)
    build_stage(release_id=second.pk)
    assert origin.log == []
    second.refresh_from_db()
    assert second.state in (ReleaseState.IN_REVIEW, ReleaseState.AWAITING_REVIEW)
    assert AuditEvent.objects.filter(release=second, kind="staging.reused").count() == 1


def test_a_build_held_by_a_live_worker_is_not_staged_twice(origin):
    fake = origin.build
    release = make_release(fake, status=BuildStatus.STAGING, lease_renewed_at=timezone.now())
    with pytest.raises(TransientError):
        build_stage(release_id=release.pk)
    assert origin.log == []


def test_a_build_whose_worker_died_is_taken_over(origin, settings):
    fake = origin.build
    release = make_release(fake, status=BuildStatus.STAGING)
    stale = timezone.now() - timedelta(seconds=settings.STAGING_LEASE_SECONDS + 1)
    Build.objects.filter(pk=release.build_id).update(lease_renewed_at=stale)
    build_stage(release_id=release.pk)
    assert Build.objects.get(pk=release.build_id).status in (
        BuildStatus.STAGED,
        BuildStatus.IN_REVIEW,
    )


def test_a_build_without_any_manifest_fails(origin_for):
    origin = origin_for(FakeBuild())
    release = make_release(FakeBuild(build_id="unknownbuild01"))
    build_stage(release_id=release.pk)
    build = Build.objects.get(pk=release.build_id)
    assert build.status == BuildStatus.FAILED
    assert "no manifest found" in build.failure_reason
    assert len(origin.log) == 3  # only the three td manifests were asked for


def test_a_missing_yml_twin_is_recorded_not_an_error(origin_for):
    fake = FakeBuild(platforms=("linux",), linux_yml=False)
    origin_for(fake)
    release = make_release(fake)
    build_stage(release_id=release.pk)
    build = Build.objects.get(pk=release.build_id)
    assert build.status in (BuildStatus.STAGED, BuildStatus.IN_REVIEW)
    assert build.platforms == ["linux"]
    manifests_event = AuditEvent.objects.get(build=build, kind="staging.manifests")
    assert f"{fake.yml_name('linux')} is 404" in manifests_event.message
    assert "windows: not built" in manifests_event.message


def test_an_artifact_missing_at_the_origin_fails_the_build(origin):
    fake = origin.build
    td = fake.td_manifest("linux")
    td["artifacts"]["snap"] = {"x64": {"url": "https://download.todesktop.com/a/ghost.snap"}}
    origin.serve(fake.td_name("linux"), json.dumps(td).encode())
    release = make_release(fake)
    build_stage(release_id=release.pk)
    build = Build.objects.get(pk=release.build_id)
    assert build.status == BuildStatus.FAILED
    assert "ghost.snap: not found at ToDesktop (404" in build.failure_reason


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"artifacts": {"nsis": {"x64": {"size": 3}}}}', b'{"artifacts": 7}'],
)
def test_a_malformed_manifest_fails_the_build_and_writes_nothing(origin, body):
    fake = origin.build
    origin.serve(fake.td_name("mac"), body)
    release = make_release(fake)
    build_stage(release_id=release.pk)
    build = Build.objects.get(pk=release.build_id)
    assert build.status == BuildStatus.FAILED
    assert fake.td_name("mac") in build.failure_reason
    assert staged_names(fake.build_id) == set()


def test_a_malformed_yml_fails_the_build(origin):
    fake = origin.build
    origin.serve(fake.yml_name("windows"), b"files: [unclosed")
    release = make_release(fake)
    build_stage(release_id=release.pk)
    assert "not YAML" in Build.objects.get(pk=release.build_id).failure_reason


def test_downloads_of_one_build_run_in_a_bounded_pool(origin, settings):
    settings.STAGING_CONCURRENCY = 2
    for name in origin.build.artifact_names:
        origin.slow(name, seconds_per_block=0.2)  # long enough for bodies to overlap
    build_stage(release_id=make_release(origin.build).pk)
    assert origin.max_in_flight == 2


def test_an_oversized_body_is_stopped_and_fails_the_build(origin):
    fake = origin.build
    deb = fake.layout["linux"]["deb"]["x64"]
    origin.serve(deb, b"x" * (fake.files[deb].size + 100_000))
    release = make_release(fake)
    build_stage(release_id=release.pk)
    build = Build.objects.get(pk=release.build_id)
    assert build.status == BuildStatus.FAILED
    assert f"{deb}: size expected {fake.files[deb].size}, actual more" in build.failure_reason
    assert not buckets.staging().exists(f"{fake.build_id}/{deb}")
