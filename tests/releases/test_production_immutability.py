"""A build cannot replace another build's files: production is immutable, and a build owns only
its own names (README: Staging names and production immutability).

The hostile build's manifests name the live build's installer and `latest-mac-build-<live>.yml`,
with hashes that are correct for the attacker's bytes. It is refused at staging; one that got
into staging anyway (staged before these checks existed) is refused at promotion. Either way
production's bytes for the live build stay, and the feed keeps serving the live build.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from urllib.parse import quote

import pytest
import yaml
from django.utils import timezone

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
from releases.services.promotion import PromotionFailed, promotion_run
from releases.services.staging import build_stage
from tests.fakes.todesktop_origin import REAL_HOST, FakeBuild, start_origin
from tests.promotion_support import approve, production_contents, stage_build

pytestmark = pytest.mark.django_db

LIVE = "250210live00001"
EVIL = "250211evil00001"


@pytest.fixture
def origin(settings, any_buckets):
    server = start_origin(FakeBuild(build_id=LIVE, platforms=("mac",)))
    settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    yield server
    server.stop()


def staged_release(build_id: str, app_id: str, *, rules: dict | None = None) -> ReleaseRequest:
    """A release request staged by the real staging service from the fake ToDesktop."""
    build = Build.objects.create(build_id=build_id, app_id=app_id)
    release = ReleaseRequest.objects.create(
        build=build, payload={"buildId": build_id}, release_info=rules
    )
    build_stage(release_id=release.pk)
    release.refresh_from_db()
    return release


def accept(release: ReleaseRequest) -> None:
    """Approved in the admin (REVIEW_BACKEND=admin), as `REQUIRED_APPROVALS` people would."""
    ReleaseRequest.objects.filter(pk=release.pk).update(
        state=ReleaseState.APPROVED, merged_by="ada", merged_at=timezone.now()
    )


def go_live(origin) -> dict[str, bytes]:
    release = staged_release(LIVE, origin.build.app_id, rules={"latestReleaseBuildId": LIVE})
    accept(release)
    promotion_run(reason="approved")
    assert Build.objects.get(build_id=LIVE).status == BuildStatus.LIVE
    return production_contents()


def sha512_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha512(data).digest()).decode()


def hostile_bytes(live: FakeBuild) -> dict[str, bytes]:
    """What the attacker wants under the live build's names: another installer, another yml."""
    return {
        live.layout["mac"]["dmg"]["x64"]: b"attacker's installer " * 200,
        live.yml_name("mac"): b"version: 9.9.9\npath: evil.dmg\nsha512: x\n",
    }


def serve_hostile_build(origin) -> dict[str, bytes]:
    """The download host serves a build EVIL whose manifests list the live build's names with
    hashes correct for the attacker's bytes (and serves those bytes under those names)."""
    live = origin.build
    files = hostile_bytes(live)
    dmg, twin = list(files)
    td = {
        "version": "9.9.9",
        "artifacts": {
            "dmg": {
                "x64": {
                    "url": f"{REAL_HOST}/{live.app_id}/{quote(dmg)}",
                    "sha256": hashlib.sha256(files[dmg]).hexdigest(),
                    "size": len(files[dmg]),
                }
            }
        },
    }
    listed = [{"url": n, "sha512": sha512_b64(files[n]), "size": len(files[n])} for n in files]
    yml = {"version": "9.9.9", "files": listed, "path": dmg, "sha512": sha512_b64(files[dmg])}
    origin.serve(f"td-latest-mac-build-{EVIL}.json", json.dumps(td).encode())
    origin.serve(f"latest-mac-build-{EVIL}.yml", yaml.safe_dump(yml).encode())
    for name, data in files.items():
        origin.serve(name, data)
    return files


def feed_manifest(client) -> bytes:
    answer = client.get("/update/latest-mac.yml")
    assert answer.status_code == 200
    return b"".join(answer.streaming_content) if answer.streaming else answer.content


def test_a_build_naming_a_live_builds_files_is_refused_at_staging(client, origin):
    before = go_live(origin)
    served = feed_manifest(client)
    downloads = len(origin.log)
    serve_hostile_build(origin)

    release = staged_release(EVIL, origin.build.app_id, rules={"latestReleaseBuildId": EVIL})

    evil = Build.objects.get(build_id=EVIL)
    assert evil.status == BuildStatus.FAILED
    assert "refused file name" in evil.failure_reason and LIVE in evil.failure_reason
    assert release.state == ReleaseState.FAILED
    # Refused before any download: only the two manifests were fetched, nothing was staged.
    fetched = {entry.name for entry in origin.log[downloads:]}
    assert not fetched & set(hostile_bytes(origin.build))
    assert list(buckets.staging().list(f"{EVIL}/")) == []
    event = AuditEvent.objects.get(kind="staging.failed", release=release)
    assert "refused file name" in event.message
    # Approving it anyway (a reviewer who did not look) publishes nothing.
    accept(release)
    with pytest.raises(PromotionFailed, match=EVIL):
        promotion_run(reason="approved")
    assert production_contents() == before
    assert feed_manifest(client) == served == origin.documents[origin.build.yml_name("mac")]


def add_staged_file(build: Build, name: str, data: bytes) -> buckets.ObjectInfo:
    """A file in the build's staging prefix, recorded and verified as staging would."""
    info = buckets.staging().write_bytes(f"{build.build_id}/{name}", data)
    hashes = buckets.hashes_of([data])
    BuildFile.objects.create(
        build=build,
        name=name,
        size=info.size,
        sha256=hashes["sha256"],
        md5=hashes["md5"],
        staged_at=timezone.now(),
        verification=Verification.VERIFIED,
    )
    return info


def sneak_into_staging(build_id: str, files: dict[str, bytes]) -> Build:
    """A build staged before these checks existed: its files recorded and verified."""
    build = Build.objects.create(
        build_id=build_id, app_id="app1", version="9.9.9", status=BuildStatus.STAGED
    )
    for name, data in files.items():
        add_staged_file(build, name, data)
    return build


def test_a_staged_build_naming_a_live_builds_files_is_refused_at_promotion(client, origin):
    before = go_live(origin)
    served = feed_manifest(client)
    evil_files = hostile_bytes(origin.build)
    evil_files[f"latest-mac-build-{EVIL}.yml"] = b"version: 9.9.9\n"
    evil = sneak_into_staging(EVIL, evil_files)
    approve(evil, release_info={"latestReleaseBuildId": EVIL})
    other, other_files = stage_build("250212good0001", "1.3.0")
    approve(other)

    with pytest.raises(PromotionFailed, match=EVIL):
        promotion_run(reason="approved")

    after = production_contents()
    assert {name: after[name] for name in before if name != "desktop-builds.json"} == {
        name: data for name, data in before.items() if name != "desktop-builds.json"
    }
    assert not [name for name in after if EVIL in name]
    listed = [entry["id"] for entry in json.loads(after["desktop-builds.json"])]
    assert listed == [LIVE, "250212good0001"]  # the other build is promoted and listed
    assert all(after[name] == data for name, data in other_files.items())
    assert json.loads(after["desktop-releases.json"]) == {"latestReleaseBuildId": LIVE}
    assert feed_manifest(client) == served
    evil.refresh_from_db()
    assert evil.status == BuildStatus.FAILED and "refused file name" in evil.failure_reason
    event = AuditEvent.objects.get(kind="promotion.name_refused", build=evil)
    assert LIVE in event.message
    assert ReleaseRequest.objects.get(build=other).state == ReleaseState.LIVE


@pytest.mark.parametrize("same", [False, True], ids=["other bytes", "same bytes"])
def test_a_copy_never_changes_an_object_production_already_holds(any_buckets, same):
    production = buckets.production(role="promoter")
    kept = b"notes of a build promoted before this install" * 10
    production.write_bytes("release-notes.txt", kept)
    staged = kept if same else kept.upper()  # same size: only the content tells them apart
    build, _ = stage_build("b7", "2.0.0")
    add_staged_file(build, "release-notes.txt", staged)
    approve(build)

    if same:
        promotion_run(reason="approved")
    else:
        with pytest.raises(PromotionFailed, match="production already holds other bytes"):
            promotion_run(reason="approved")

    contents = production_contents()
    assert contents["release-notes.txt"] == kept
    build.refresh_from_db()
    assert (build.status == BuildStatus.LIVE) is same
    assert ("desktop-builds.json" in contents) is same
    if not same:
        event = AuditEvent.objects.get(kind="promotion.overwrite_refused", build=build)
        assert "release-notes.txt" in event.message


@pytest.mark.s3
def test_a_same_size_multipart_impostor_is_not_taken_for_the_file_production_holds(s3_buckets):
    # Multipart ETags are not content hashes: size alone once made these two "the same".
    size = buckets.S3_PART_SIZE + 1024
    production = buckets.production(role="promoter")
    original = os.urandom(size)
    production.write_bytes("big.bin", original)
    build, _ = stage_build("b8", "2.0.0")
    info = add_staged_file(build, "big.bin", os.urandom(size))
    assert info.etag.endswith("-2")  # really multipart
    approve(build)

    with pytest.raises(PromotionFailed, match="production already holds other bytes"):
        promotion_run(reason="approved")

    assert production.read_bytes("big.bin") == original
    assert Build.objects.get(pk=build.pk).status == BuildStatus.FAILED


def test_a_name_reserved_for_partial_writes_fails_the_build_at_staging(origin):
    fake = origin.build
    td = fake.td_manifest("mac")
    td["artifacts"]["zip"]["x64"]["url"] = f"{REAL_HOST}/{fake.app_id}/.tmp-1234.zip"
    origin.serve(fake.td_name("mac"), json.dumps(td).encode())

    release = staged_release(LIVE, fake.app_id)

    build = Build.objects.get(pk=release.build_id)
    assert build.status == BuildStatus.FAILED
    assert "reserved for partial writes" in build.failure_reason
