"""Promotion staging → production with the admin backend's desired state (docs/promotion.md)."""

from __future__ import annotations

import json

import pytest

from releases.integrations import buckets
from releases.models import (
    AuditEvent,
    Build,
    BuildStatus,
    ReleaseRequest,
    ReleaseState,
    Verification,
)
from releases.services.promotion import PromotionFailed, promotion_run
from tests.promotion_support import ManifestPoller, approve, production_contents, stage_build

pytestmark = pytest.mark.django_db


def test_an_approved_build_reaches_production_byte_for_byte(any_buckets):
    build, files = stage_build("b1", "1.0.0")
    approve(build, release_info={"latestReleaseBuildId": "b1"})

    result = promotion_run(reason="approved", actor="ada")

    contents = production_contents()
    for name, data in files.items():
        assert contents[name] == data
    assert json.loads(contents["desktop-builds.json"]) == [
        {"id": "b1", "version": "1.0.0", "createdAt": "2025-02-10T10:00:00Z", "isReleased": True}
    ]
    assert json.loads(contents["desktop-releases.json"]) == {"latestReleaseBuildId": "b1"}
    assert set(contents) == set(files) | {"desktop-builds.json", "desktop-releases.json"}
    assert result.written == ["desktop-builds.json", "desktop-releases.json"]


def test_the_release_and_build_become_live_with_time_and_merger(any_buckets):
    build, _ = stage_build("b2")
    release = approve(build, by="grace")

    promotion_run(reason="approved")

    release.refresh_from_db()
    build.refresh_from_db()
    assert release.state == ReleaseState.LIVE and release.live_at is not None
    assert build.status == BuildStatus.LIVE and build.live_at is not None
    event = AuditEvent.objects.get(kind="release.live", release=release)
    assert event.actor == "grace"
    assert AuditEvent.objects.filter(kind="promotion.succeeded").count() == 1


def test_a_second_run_finds_production_in_sync_and_copies_nothing(any_buckets):
    build, _ = stage_build("b3")
    approve(build)
    promotion_run(reason="approved")
    before = production_contents()

    again = promotion_run(reason="again")

    assert again.in_sync and again.copied == [] and again.written == []
    assert production_contents() == before
    assert AuditEvent.objects.filter(kind="promotion.succeeded").count() == 1


def test_binaries_come_before_manifests_and_control_files_last(fs_buckets):
    build, files = stage_build("b4", binaries=3)
    approve(build, release_info={"latestReleaseBuildId": "b4"})

    result = promotion_run(reason="approved")

    order = result.copied + result.written
    manifests = [i for i, key in enumerate(order) if key.endswith((".yml", ".json"))]
    binaries = [i for i, key in enumerate(order) if not key.endswith((".yml", ".json"))]
    assert max(binaries) < min(manifests)
    assert result.written == ["desktop-builds.json", "desktop-releases.json"]


def test_a_build_missing_from_staging_fails_loudly_and_writes_nothing_for_it(any_buckets):
    present, present_files = stage_build("ok1")
    approve(present)
    promotion_run(reason="first")
    builds_before = production_contents()["desktop-builds.json"]
    ghost = Build.objects.create(build_id="ghost1", app_id="app1", version="2.0.0")
    release = approve(ghost, release_info={"latestReleaseBuildId": "ghost1"})

    with pytest.raises(PromotionFailed, match="ghost1"):
        promotion_run(reason="approved")

    contents = production_contents()
    assert not [key for key in contents if "ghost1" in key]
    assert contents["desktop-builds.json"] == builds_before
    assert contents["desktop-releases.json"] == b"{}\n"  # the ghost's rules were not published
    event = AuditEvent.objects.get(kind="promotion.failed", build=ghost)
    assert "no files under ghost1/ in staging" in event.message
    ghost.refresh_from_db()
    release.refresh_from_db()
    assert ghost.status == BuildStatus.FAILED and "ghost1" in ghost.failure_reason
    # It names the reason, and is still accepted: a later reconcile retries it.
    assert (release.state, release.failure_reason) == (ReleaseState.FAILED, ghost.failure_reason)
    assert release.merged_at is not None


def test_a_build_with_one_file_missing_from_staging_is_not_promoted(fs_buckets):
    build, files = stage_build("half1")
    approve(build)
    name = next(iter(files))
    buckets.staging().delete(f"half1/{name}")

    with pytest.raises(PromotionFailed, match="missing from staging"):
        promotion_run(reason="approved")

    assert production_contents() == {}


def test_a_restaged_build_is_promoted_by_the_next_run(fs_buckets):
    ghost = Build.objects.create(build_id="late1", app_id="app1", version="3.0.0")
    approve(ghost)
    with pytest.raises(PromotionFailed):
        promotion_run(reason="approved")
    staging = buckets.staging()
    info = staging.write_bytes("late1/App-3.0.0-build-late1.AppImage", b"bytes")
    # ...and recorded and verified, as a staging run does (unrecorded files are never promoted).
    ghost.files.create(
        name="App-3.0.0-build-late1.AppImage", size=info.size, verification=Verification.VERIFIED
    )

    promotion_run(reason="reconcile")

    ghost.refresh_from_db()
    assert ghost.status == BuildStatus.LIVE
    assert production_contents()["App-3.0.0-build-late1.AppImage"] == b"bytes"
    assert ReleaseRequest.objects.get(build=ghost).state == ReleaseState.LIVE


def test_a_poller_never_sees_a_manifest_naming_a_missing_file(s3_buckets):
    for index in range(3):
        build, _ = stage_build(f"poll{index}", f"1.0.{index}", binaries=6)
        approve(build)
    poller = ManifestPoller(buckets.production(role="promoter"))
    poller.start()

    try:
        promotion_run(reason="approved")
    finally:
        poller.stop.set()
        poller.join(timeout=30)

    assert poller.dangling == []
    assert poller.rounds > 3 and poller.partial_rounds > 0  # it really watched the copies


def test_a_build_with_a_file_that_failed_verification_is_never_promoted(fs_buckets):
    build, files = stage_build("bad1")
    approve(build)
    build.files.filter(name=next(iter(files))).update(verification=Verification.MISMATCH)

    with pytest.raises(PromotionFailed, match="failed verification"):
        promotion_run(reason="approved")

    assert production_contents() == {}
    assert AuditEvent.objects.filter(kind="promotion.failed", build=build).exists()


def test_a_fresh_install_reconciled_gets_both_control_files_and_the_feed_reads_them(fs_buckets):
    """Reconcile on an empty install used to write desktop-builds.json alone; the feed then
    reported desktop-releases.json missing (/healthz failed) until some release carried rules."""
    from cdn.metadata import metadata_load

    result = promotion_run(reason="reconcile")

    contents = production_contents()
    assert contents == {"desktop-builds.json": b"[]\n", "desktop-releases.json": b"{}\n"}
    assert result.written == ["desktop-builds.json", "desktop-releases.json"]
    assert metadata_load(bucket=buckets.production()).errors == ()
    assert promotion_run(reason="reconcile").in_sync


def test_a_release_without_rules_is_published_beside_empty_rules(any_buckets):
    from cdn.metadata import metadata_load

    build, _ = stage_build("b4")
    approve(build)  # no releaseInfo: no rules of its own

    promotion_run(reason="approved")

    contents = production_contents()
    assert json.loads(contents["desktop-releases.json"]) == {}
    assert [e["id"] for e in json.loads(contents["desktop-builds.json"])] == ["b4"]
    assert metadata_load(bucket=buckets.production()).errors == ()


def test_reconcile_restores_hand_changed_control_files_but_never_touches_a_build_file(fs_buckets):
    """What the README says of reconcile (admin backend): control files changed by hand get
    the approved releases' entries and rules back, recorded as `reconcile.repaired`; a build's
    file is never rewritten (production is immutable): reconcile does not look at the bytes of
    listed builds, so a hand-changed one stays as it is."""
    one, _ = stage_build("h1", "1.0.0")
    approve(one, release_info={"latestReleaseBuildId": "h1"})
    two, files = stage_build("h2", "1.1.0")
    approve(two, release_info={"latestReleaseBuildId": "h2"})
    promotion_run(reason="approved")
    before = production_contents()
    production = buckets.production(role="promoter")
    entries = json.loads(before["desktop-builds.json"])
    production.write_bytes("desktop-builds.json", json.dumps(entries[:1]).encode())
    production.write_bytes("desktop-releases.json", b'{"latestReleaseBuildId": "h1"}')

    result = promotion_run(reason="reconcile")

    assert production_contents() == before
    assert result.written == ["desktop-builds.json", "desktop-releases.json"]
    assert AuditEvent.objects.filter(kind="reconcile.repaired").count() == 1

    artifact = sorted(name for name in files if not name.endswith((".yml", ".json")))[0]
    production.write_bytes(artifact, b"changed by hand")
    assert promotion_run(reason="reconcile").in_sync  # not detected, not rewritten
    assert production_contents()[artifact] == b"changed by hand"
