"""Every staged file is bounded and checked: size caps while streaming, blockmaps parsed as
blockmaps, manifests of bounded depth, and free disk space kept for the database."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import zlib
from collections.abc import Iterator

import pytest
import yaml

from releases.errors import TransientError
from releases.integrations import buckets
from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services.staging import build_stage
from tests.fakes.todesktop_origin import FakeBuild, start_origin

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fs_buckets")]

MiB = 1024 * 1024


@pytest.fixture
def origin(settings):
    server = start_origin(FakeBuild())
    settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    settings.HTTP_MAX_RETRIES = 2
    yield server
    server.stop()


def make_release(fake: FakeBuild) -> ReleaseRequest:
    build = Build.objects.create(build_id=fake.build_id, app_id=fake.app_id)
    return ReleaseRequest.objects.create(build=build, payload={"buildId": fake.build_id})


def stage(origin) -> Build:
    release = make_release(origin.build)
    build_stage(release_id=release.pk)
    release.refresh_from_db()
    build = Build.objects.get(pk=release.build_id)
    if build.status == BuildStatus.FAILED:
        assert release.state == ReleaseState.FAILED
        assert release.failure_reason == build.failure_reason
    return build


def files_on_disk(settings) -> list[str]:
    """Every file under the buckets, temp files included."""
    root = settings.BUCKETS_DIR
    return [os.path.join(d, f) for d, _, names in os.walk(root) for f in names]


def repeated(total: int, block: bytes = b"\x5a" * (64 * 1024)) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = block[: total - sent]
        sent += len(piece)
        yield piece


def gzip_stream(total: int) -> Iterator[bytes]:
    """A valid gzip stream of `total` bytes that never compresses (stored deflate blocks)."""
    deflate = zlib.compressobj(0, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = os.urandom(64 * 1024)
    for _ in range(total // len(block)):
        yield deflate.compress(block)
    yield deflate.flush()


def with_extra_artifact(origin, name: str, **entry) -> None:
    """The Linux td manifest also lists `name` (a snap), with the given fields."""
    fake = origin.build
    td = fake.td_manifest("linux")
    td["artifacts"]["snap"] = {"x64": {"url": f"https://download.todesktop.com/a/{name}", **entry}}
    origin.serve(fake.td_name("linux"), json.dumps(td).encode())


# --- Size caps ---------------------------------------------------------------------------------


def test_an_artifact_with_no_declared_size_is_stopped_at_its_cap(origin, settings):
    settings.MAX_ARTIFACT_BYTES = 4 * MiB
    with_extra_artifact(origin, "app.snap")
    origin.stream("app.snap", lambda: repeated(200 * MiB))  # chunked: no Content-Length

    build = stage(origin)

    assert build.status == BuildStatus.FAILED
    assert "app.snap: larger than MAX_ARTIFACT_BYTES (4194304 bytes)" in build.failure_reason
    [entry] = origin.requested("app.snap")
    assert entry.sent < 200 * MiB  # the worker hung up, it did not drain the body
    assert not [path for path in files_on_disk(settings) if "snap" in path or ".tmp-" in path]


def test_a_declared_size_over_the_cap_is_refused_before_any_download(origin, settings):
    settings.MAX_ARTIFACT_BYTES = 1000  # the fake's artifacts are 2048 bytes

    build = stage(origin)

    assert build.status == BuildStatus.FAILED
    assert "declares 2048 bytes, over MAX_ARTIFACT_BYTES (1000 bytes)" in build.failure_reason
    assert {entry.name for entry in origin.log} <= set(origin.documents)  # manifests only
    assert files_on_disk(settings) == []


def test_a_content_length_over_the_cap_is_refused_before_the_body(origin, settings):
    settings.MAX_ARTIFACT_BYTES = 4 * MiB
    with_extra_artifact(origin, "app.snap")
    origin.stream("app.snap", lambda: repeated(200 * MiB), length=200 * MiB)

    build = stage(origin)

    assert build.status == BuildStatus.FAILED
    assert "declares 209715200 bytes, over the cap of 4194304" in build.failure_reason
    [entry] = origin.requested("app.snap")
    assert entry.sent < 200 * MiB
    assert not [path for path in files_on_disk(settings) if "snap" in path]


def test_a_body_longer_than_the_manifest_says_is_stopped(origin, settings):
    fake = origin.build
    exe = fake.layout["windows"]["nsis"]["x64"]
    origin.stream(exe, lambda: repeated(50 * MiB))

    build = stage(origin)

    assert build.status == BuildStatus.FAILED
    assert f"{exe}: size expected 2048, actual more (download stopped)" in build.failure_reason
    assert origin.requested(exe)[0].sent < 50 * MiB
    assert not [path for path in files_on_disk(settings) if exe in path]


@pytest.mark.timeout(120)
def test_a_200_mib_blockmap_is_stopped_at_the_default_cap(origin, settings):
    assert settings.MAX_BLOCKMAP_BYTES == 64 * MiB
    fake = origin.build
    blockmap = f"{fake.layout['mac']['dmg']['arm64']}.blockmap"
    origin.stream(blockmap, lambda: gzip_stream(200 * MiB))

    build = stage(origin)

    assert build.status == BuildStatus.FAILED
    assert f"{blockmap}: larger than MAX_BLOCKMAP_BYTES (67108864 bytes)" in build.failure_reason
    assert origin.requested(blockmap)[0].sent < 200 * MiB
    assert not [path for path in files_on_disk(settings) if blockmap in path or ".tmp-" in path]


def test_a_manifest_over_its_cap_fails_the_build(origin, settings):
    settings.MAX_MANIFEST_BYTES = 64 * 1024
    fake = origin.build
    origin.stream(fake.td_name("mac"), lambda: repeated(5 * MiB))

    build = stage(origin)

    assert build.status == BuildStatus.FAILED
    assert "larger than MAX_MANIFEST_BYTES (65536 bytes)" in build.failure_reason
    assert origin.requested(fake.td_name("mac"))[0].sent < 5 * MiB


# --- Blockmaps are blockmaps --------------------------------------------------------------


def _gz(document) -> bytes:
    text = document if isinstance(document, bytes) else json.dumps(document).encode()
    return gzip.compress(text)


GOOD_FILE = {"name": "file", "offset": 0, "checksums": ["abc="], "sizes": [2048]}
NOT_BLOCKMAPS = {
    "a credentials file": (b"CANARY-SECRET aws_secret_access_key=AKIA", "not gzip data"),
    "an html page": (b"<html>Moved</html>", "not gzip data"),
    "gzip of text": (_gz(b"hello"), "not JSON"),
    "gzip of a list": (_gz([1, 2]), "not a JSON object"),
    "no version": (_gz({"files": [GOOD_FILE]}), "version"),
    "a numeric version": (_gz({"version": 2, "files": [GOOD_FILE]}), "version"),
    "no files": (_gz({"version": "2", "files": []}), "files is not a non-empty list"),
    "a file without sizes": (
        _gz({"version": "2", "files": [{**GOOD_FILE, "sizes": None}]}),
        "files[0]: sizes is not a list",
    ),
    "negative sizes": (
        _gz({"version": "2", "files": [{**GOOD_FILE, "sizes": [-1]}]}),
        "files[0]: sizes is not a list of non-negative integers",
    ),
    "checksums and sizes that differ in length": (
        _gz({"version": "2", "files": [{**GOOD_FILE, "checksums": ["a", "b"]}]}),
        "files[0]: 2 checksums for 1 sizes",
    ),
    "a truncated gzip stream": (_gz({"version": "2", "files": [GOOD_FILE]})[:-12], "truncated"),
    "data after the gzip stream": (
        _gz({"version": "2", "files": [GOOD_FILE]}) + b"<script>",
        "data after the end of the gzip stream",
    ),
    "deep nesting": (
        _gz(b'{"version": "2", "files": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        "nested too deeply",
    ),
}


@pytest.mark.parametrize("body, reason", NOT_BLOCKMAPS.values(), ids=NOT_BLOCKMAPS.keys())
def test_a_blockmap_that_is_not_one_fails_the_build_with_its_reason(origin, settings, body, reason):
    fake = origin.build
    blockmap = f"{fake.layout['windows']['nsis']['x64']}.blockmap"
    origin.serve(blockmap, body)

    build = stage(origin)

    assert build.status == BuildStatus.FAILED
    assert f"{blockmap}: not an electron-builder blockmap: " in build.failure_reason
    assert reason in build.failure_reason
    assert not buckets.staging().exists(f"{fake.build_id}/{blockmap}")


def test_a_gzip_bomb_blockmap_stops_at_the_inflated_cap(origin, settings):
    settings.MAX_BLOCKMAP_BYTES = 1 * MiB
    fake = origin.build
    blockmap = f"{fake.layout['linux']['appImage']['x64']}.blockmap"
    bomb = gzip.compress(b'{"version": "2", "files": [' + b" " * (50 * MiB))
    assert len(bomb) < 100 * 1024
    origin.serve(blockmap, bomb)

    build = stage(origin)

    assert build.status == BuildStatus.FAILED
    assert "inflates to more than MAX_BLOCKMAP_BYTES (1048576 bytes)" in build.failure_reason


def test_the_fake_origin_serves_real_blockmaps_that_staging_accepts(origin):
    build = stage(origin)

    assert build.status in (BuildStatus.STAGED, BuildStatus.IN_REVIEW), build.failure_reason
    blockmaps = build.files.filter(name__endswith=".blockmap")
    assert blockmaps.count() == len(origin.build.blockmapped)
    document = json.loads(gzip.decompress(origin.build.files[blockmaps[0].name].content()))
    assert document["version"] == "2" and sum(document["files"][0]["sizes"]) == 2048


# --- Manifests of bounded depth --------------------------------------------------------------


@pytest.mark.parametrize("which", ["yml", "td"])
def test_a_manifest_nested_200000_deep_fails_the_build_with_its_reason(origin, which):
    fake = origin.build
    if which == "yml":
        name, body = fake.yml_name("windows"), b"files: " + b"[" * 200_000 + b"]" * 200_000
    else:
        name, body = fake.td_name("windows"), b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    origin.serve(name, body)

    build = stage(origin)

    assert build.status == BuildStatus.FAILED  # not left "staging" by a RecursionError
    assert f"{name}: not " in build.failure_reason and "nested" in build.failure_reason


def test_a_manifest_of_ordinary_depth_is_still_read(origin):
    fake = origin.build
    yml = fake.yml_manifest("mac")
    yml["extra"] = {"a": {"b": {"c": [[[{"d": 1}]]]}}}
    origin.serve(fake.yml_name("mac"), yaml.safe_dump(yml).encode())

    build = stage(origin)

    assert build.status in (BuildStatus.STAGED, BuildStatus.IN_REVIEW), build.failure_reason


# --- Free disk space --------------------------------------------------------------------------


def test_a_write_that_would_eat_the_disk_reserve_is_retried_later_with_its_reason(origin, settings):
    # 1 GiB of room, and a file that says it needs 2 GiB (its body is never read).
    settings.MIN_FREE_DISK_BYTES = shutil.disk_usage(settings.BUCKETS_DIR).free - 1024**3
    with_extra_artifact(origin, "app.snap", size=2 * 1024**3)
    origin.stream("app.snap", lambda: repeated(2 * 1024**3), length=2 * 1024**3)
    release = make_release(origin.build)

    with pytest.raises(TransientError, match="not enough free disk space"):
        build_stage(release_id=release.pk)

    build = Build.objects.get(pk=release.build_id)
    assert build.status == BuildStatus.RECEIVED  # given back: the retry starts at once
    event = AuditEvent.objects.get(kind="staging.retrying")
    assert "app.snap: not enough free disk space" in event.message
    assert "needs 2.00 GiB" in event.message and "MIN_FREE_DISK_BYTES keeps" in event.message
    assert not [path for path in files_on_disk(settings) if "snap" in path or ".tmp-" in path]
    assert origin.requested("app.snap")[0].sent < 1024**3


def test_no_write_at_all_when_the_disk_is_already_under_its_reserve(origin, settings):
    settings.MIN_FREE_DISK_BYTES = shutil.disk_usage(settings.BUCKETS_DIR).free + 1024**3
    release = make_release(origin.build)

    with pytest.raises(TransientError, match="not enough free disk space"):
        build_stage(release_id=release.pk)

    assert files_on_disk(settings) == []


def test_an_artifact_cut_off_at_its_cap_leaves_no_object_nor_upload_on_s3(settings, s3_buckets):
    settings.MAX_ARTIFACT_BYTES = 12 * MiB  # past one 8 MiB part: a multipart upload is open
    server = start_origin(FakeBuild())
    settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
    try:
        with_extra_artifact(server, "app.snap")
        server.stream("app.snap", lambda: repeated(100 * MiB))

        build = stage(server)
    finally:
        server.stop()

    assert build.status == BuildStatus.FAILED and "MAX_ARTIFACT_BYTES" in build.failure_reason
    client = s3_buckets.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=settings.STAGING_BUCKET)["Contents"]]
    assert not [key for key in keys if "snap" in key]
    uploads = client.list_multipart_uploads(Bucket=settings.STAGING_BUCKET).get("Uploads", [])
    assert uploads == []
