"""Retention of the staging bucket: `manage.py prune_staging [--dry-run]` and the beat task.

Each scenario runs on both backends: the filesystem (with `.tmp-` files of a killed writer)
and the S3 server the tests start (with a real incomplete multipart upload).
"""

from __future__ import annotations

import io
import json
import os
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from releases import tasks
from releases.integrations import buckets
from releases.models import AuditEvent, Build, BuildFile, BuildStatus, ReleaseState
from releases.services import retention
from releases.services.audit import audit_record
from releases.services.promotion import promotion_run
from releases.services.retention import prune_plan, staging_prune
from selfhosted.celery import app
from tests.factories import make_release
from tests.promotion_support import approve, production_contents, stage_build

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


def _build(build_id: str, status: str, *, live_days_ago: int | None = None) -> Build:
    build, _ = stage_build(build_id, binaries=1, size=500)
    fields = {"status": status}
    if live_days_ago is not None:
        fields["live_at"] = timezone.now() - timedelta(days=live_days_ago)
    Build.objects.filter(pk=build.pk).update(**fields)
    build.refresh_from_db()
    return build


def _staged(build: Build) -> set[str]:
    return {info.key for info in buckets.staging().list(build.staging_prefix)}


@pytest.fixture
def releases_in_every_state(any_buckets, settings):
    """Builds in every state a prune must tell apart, on each backend."""
    return _releases_in_every_state(settings)


@pytest.fixture
def fs_releases(fs_buckets, settings):
    """The same on the filesystem only (rules whose outcome does not depend on the backend)."""
    return _releases_in_every_state(settings)


def _releases_in_every_state(settings) -> dict[str, Build]:
    """production names `live1` as the latest release."""
    settings.STAGING_KEEP_LIVE_BUILDS = 2
    builds = {
        "failed": _build("failed1", BuildStatus.FAILED),
        "rejected": _build("rejected1", BuildStatus.REJECTED),
        "closed": _build("closed1", BuildStatus.CLOSED),
        "retried": _build("retried1", BuildStatus.FAILED),
        "in_review": _build("review1", BuildStatus.IN_REVIEW),
        # live builds, oldest first: live1 is the rollback target production names,
        # live2 has a rollback open, live3 is superseded, live4 and live5 are the newest two
        **{
            f"live{n}": _build(f"live{n}", BuildStatus.LIVE, live_days_ago=60 - 10 * n)
            for n in range(1, 6)
        },
    }
    make_release(builds["retried"], state=ReleaseState.PENDING)  # a retry of the failed build
    make_release(builds["in_review"], state=ReleaseState.IN_REVIEW)
    make_release(builds["live2"], kind="rollback", state=ReleaseState.IN_REVIEW)
    production = buckets.production(role="promoter")
    production.write_bytes("desktop-releases.json", b'{"latestReleaseBuildId": "live1"}')
    production.write_bytes("desktop-builds.json", json.dumps([{"id": "live1"}]).encode())
    for key in _staged(builds["live1"]):  # live1's files, as promotion copied them
        production.copy_from(buckets.staging(role="promoter"), key, key.split("/", 1)[1])
    return builds


def _leftovers(backend: str, server) -> dict[str, list[str]]:
    """Unfinished writes of killed writers, old and new, in staging and in production."""
    if backend == "filesystem":
        made = {}
        for bucket in (buckets.staging(), buckets.production()):
            root = bucket.root / "failed1"
            root.mkdir(parents=True, exist_ok=True)
            old, new = root / ".tmp-0ld", root / ".tmp-n3w"
            old.write_bytes(b"x" * 700)
            new.write_bytes(b"y" * 300)
            two_days_ago = time.time() - 2 * DAY
            os.utime(old, (two_days_ago, two_days_ago))
            made[bucket.name] = ["failed1/.tmp-0ld"]
        return made
    client = server.client()
    made = {}
    for bucket in (buckets.staging(), buckets.production()):
        key = "killed1/App Setup 9.9.9.exe"
        upload = client.create_multipart_upload(Bucket=bucket.name, Key=key)
        client.upload_part(
            Bucket=bucket.name, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"z" * 1024
        )
        made[bucket.name] = [key]
    return made


def _command(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("prune_staging", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().splitlines()


def test_a_dry_run_lists_exactly_what_the_run_then_removes(
    releases_in_every_state, any_buckets, s3_server, settings
):
    builds = releases_in_every_state
    leftovers = _leftovers(any_buckets, s3_server)
    settings.STAGING_RETENTION_DAYS = 0  # no grace period: expired as soon as they qualify
    production_before = production_contents()
    production_leftovers = _leftover_keys(buckets.production())
    staged_before = {name: _staged(build) for name, build in builds.items()}

    listed = _command("--dry-run")
    assert listed[-1].startswith("dry run: ")
    assert {name: _staged(build) for name, build in builds.items()} == staged_before
    assert not AuditEvent.objects.filter(kind__in=("staging.pruned", "staging.swept")).exists()

    removed = _command()
    assert removed[-1].startswith("removed: ")
    assert removed[:-1] == listed[:-1]

    gone = {"failed", "rejected", "closed", "live3"}
    for name, build in builds.items():
        assert _staged(build) == (set() if name in gone else staged_before[name]), name
    deleted = {key for name in gone for key in staged_before[name]}
    build_lines = [line for line in removed if line.startswith("delete ") and ".tmp-" not in line]
    assert len(build_lines) == len(deleted)
    assert all(any(line.startswith(f"delete {key} (") for line in build_lines) for key in deleted)
    assert production_contents() == production_before  # never touches production
    staging_leftover = leftovers[settings.STAGING_BUCKET][0]
    assert sum(staging_leftover in line for line in removed) == 1
    assert all(settings.PRODUCTION_BUCKET not in line for line in removed)
    assert _leftover_keys(buckets.production()) == production_leftovers
    assert _leftover_keys(buckets.staging()) == (
        ["failed1/.tmp-n3w"] if any_buckets == "filesystem" else []
    )

    pruned = AuditEvent.objects.filter(kind="staging.pruned")
    assert {event.build.build_id: set(event.data["keys"]) for event in pruned} == {
        builds[name].build_id: staged_before[name] for name in gone
    }
    swept = AuditEvent.objects.get(kind="staging.swept")
    assert [staging_leftover in line for line in swept.data["removed"]] == [True]
    assert not BuildFile.objects.filter(build__build_id="failed1", staged_at__isnull=False)
    assert BuildFile.objects.filter(build__build_id="live4", staged_at__isnull=True).count() == 0
    assert _command()[:-1] == []  # nothing left to do


def _leftover_keys(bucket) -> list[str]:
    epoch_plus_a_century = timezone.now() + timedelta(days=36500)
    return sorted(item.key for item in bucket.leftovers(before=epoch_plus_a_century))


def _expired_at(days_from_now: int) -> set[str]:
    plan = prune_plan(now=timezone.now() + timedelta(days=days_from_now))
    return {item.build.build_id for item in plan.builds}


def test_retention_days_count_from_the_last_activity_and_from_being_superseded(
    fs_releases, settings
):
    settings.STAGING_RETENTION_DAYS = 30
    assert _expired_at(0) == set()
    # live3 was superseded by 2 newer live builds when live5 went live, 10 days ago
    assert _expired_at(21) == {"live3"}
    # the failed, rejected and closed builds changed today
    assert _expired_at(31) == {"failed1", "rejected1", "closed1", "live3"}
    audit_record(kind="test.note", message="a re-release", build=fs_releases["live3"])
    assert _expired_at(21) == set()  # its own newer event counts


def test_without_readable_rules_no_live_build_is_removed(fs_releases, settings):
    settings.STAGING_RETENTION_DAYS = 0
    buckets.production(role="promoter").write_bytes("desktop-releases.json", b"{not json")
    plan = prune_plan()
    assert {item.build.build_id for item in plan.builds} == {"failed1", "rejected1", "closed1"}
    assert plan.notes and "kept every live build" in plan.notes[0]


def test_a_build_that_a_retry_reopened_after_the_plan_keeps_its_files(fs_releases, settings):
    settings.STAGING_RETENTION_DAYS = 0
    plan = prune_plan()
    item = next(item for item in plan.builds if item.build.build_id == "failed1")
    make_release(item.build, state=ReleaseState.PENDING)  # a manager clicked "Retry" meanwhile
    assert retention._build_prune(item, staging=buckets.staging(), actor="test") is None
    assert _staged(item.build) == {info.key for info in item.objects}
    assert not AuditEvent.objects.filter(kind="staging.pruned").exists()


def test_beat_prunes_daily_on_the_staging_queue(fs_releases, settings):
    entry = app.conf.beat_schedule["staging-retention"]
    assert entry["task"] == "releases.tasks.staging_prune"
    assert entry["schedule"] == float(settings.STAGING_PRUNE_INTERVAL_SECONDS) == DAY
    assert app.amqp.router.route({}, entry["task"])["queue"].name == "staging"
    settings.STAGING_RETENTION_DAYS = 0
    tasks.staging_prune.delay()
    event = AuditEvent.objects.filter(kind="staging.pruned").first()
    assert event is not None and event.actor == "retention (beat)"
    assert _staged(fs_releases["failed"]) == set()


def test_a_pruned_live_build_is_published_again_from_what_production_holds(any_buckets, settings):
    """Production lost its `desktop-builds.json` (or the default branch lists a pruned build
    anew): the build's files are in production, so promotion needs no staged copy of them."""
    settings.STAGING_KEEP_LIVE_BUILDS = 0
    settings.STAGING_RETENTION_DAYS = 0
    for build_id in ("old1", "new1"):
        build, _ = stage_build(build_id)
        approve(build, release_info={"latestReleaseBuildId": build_id})
        promotion_run(reason="approved")
    pruned = staging_prune(actor="test")
    assert [item.build.build_id for item in pruned.builds] == ["old1"]  # new1: the latest
    production = buckets.production(role="promoter")
    production.delete("desktop-builds.json")

    promotion_run(reason="reconcile")

    listed = json.loads(production.read_bytes("desktop-builds.json"))
    assert [entry["id"] for entry in listed] == ["old1", "new1"]
    assert Build.objects.get(build_id="old1").status == BuildStatus.LIVE
    assert not AuditEvent.objects.filter(kind="promotion.failed").exists()
