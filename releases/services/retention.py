"""Retention of the staging bucket: what staging may forget, and forgetting it (README,
"Operations" → "Retention").

Without this, staging only grows. `staging_prune` removes from the staging bucket:

1. **Leftovers** older than a day: incomplete multipart uploads (S3) and `.tmp-` files
   (filesystem) of writers that died. A running write is minutes old at most.
2. **Staged files of builds nobody can need any more**, once that has been so for
   `STAGING_RETENTION_DAYS` (counted from the build's last audit event, and for a live build
   from the moment it was superseded):
   - rejected, failed or closed builds;
   - live builds superseded by `STAGING_KEEP_LIVE_BUILDS` newer live builds.

It never touches production, and always keeps the staged files of:
- a build with an open release request (pending, awaiting or in review, changes requested,
  approved, merged; a release or a rollback): staging opens its review from them and promotion
  copies them;
- a build that production's `desktop-releases.json` names (the latest release, redirections);
- the `STAGING_KEEP_LIVE_BUILDS` newest live builds. These are the likely rollback targets. A
  rollback only rewrites `desktop-releases.json` (its build's files are in production already),
  so keeping them is a safety net: a build production lost can be promoted again without
  ToDesktop. When production's rules cannot be read, no live build is removed.

The build's `BuildFile` rows stay (hashes and verification are the record) with `staged_at`
cleared; a retry of a failed build downloads again. Every removal is in the audit trail:
`staging.pruned` per build (its keys and bytes), `staging.swept` for the leftovers. A dry run
lists exactly what a run removes, one line per object (`PrunePlan.describe`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from releases.control_files import (
    RELEASES_FILE,
    control_parse,
    control_read,
    rules_build_ids,
)
from releases.integrations import buckets
from releases.integrations.buckets import Bucket, Leftover, ObjectInfo
from releases.models import Build, BuildFile, BuildStatus, ReleaseRequest
from releases.services.audit import audit_record
from releases.services.lifecycle import BUILD_FINAL, RELEASE_OPEN

logger = logging.getLogger(__name__)

LEFTOVER_AGE = timedelta(days=1)


@dataclass(frozen=True)
class BuildPrune:
    build: Build
    reason: str
    objects: tuple[ObjectInfo, ...]


@dataclass
class PrunePlan:
    leftovers: list[Leftover] = field(default_factory=list)
    builds: list[BuildPrune] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was kept for lack of information

    def describe(self) -> list[str]:
        """One line per removal; a run prints the lines of what it removed."""
        return [leftover_line(item) for item in self.leftovers] + [
            f"delete {info.key} ({info.size} bytes): {item.reason}"
            for item in self.builds
            for info in item.objects
        ]

    @property
    def bytes(self) -> int:
        return sum(info.size for item in self.builds for info in item.objects)


def leftover_line(leftover: Leftover) -> str:
    started = f"started {leftover.started:%Y-%m-%d %H:%M} UTC"
    if leftover.upload_id:
        return f"abort incomplete upload {leftover.key} (upload {leftover.upload_id}, {started})"
    return f"delete temp file {leftover.key} ({leftover.size} bytes, {started})"


def prune_plan(*, now: datetime | None = None) -> PrunePlan:
    """What a prune would remove now (nothing is changed)."""
    now = now or timezone.now()
    staging = buckets.staging()
    plan = PrunePlan(leftovers=list(staging.leftovers(before=now - LEFTOVER_AGE)))
    # One listing of the bucket rather than one per expired build (those grow with history).
    by_build: dict[str, list[ObjectInfo]] = {}
    for info in staging.list():
        if "/" in info.key:
            by_build.setdefault(info.key.split("/", 1)[0], []).append(info)
    for build, reason in _expired(now=now, notes=plan.notes):
        objects = tuple(by_build.get(build.build_id, ()))
        if objects:
            plan.builds.append(BuildPrune(build=build, reason=reason, objects=objects))
    return plan


def staging_prune(*, actor: str, dry_run: bool = False, now: datetime | None = None) -> PrunePlan:
    """Remove what `prune_plan` lists; returns what was removed (the plan itself on a dry run).

    Each build is checked again under its row lock just before its files go, so a retry or a
    rollback that started meanwhile keeps them."""
    plan = prune_plan(now=now)
    if dry_run:
        return plan
    staging = buckets.staging()
    done = PrunePlan(notes=plan.notes)
    try:
        for leftover in plan.leftovers:
            staging.leftover_remove(leftover)
            done.leftovers.append(leftover)
        for item in plan.builds:
            removed = _build_prune(item, staging=staging, actor=actor)
            if removed is not None:
                done.builds.append(removed)
    finally:
        if done.leftovers:
            _leftovers_record(done.leftovers, actor=actor)
    return done


def _expired(*, now: datetime, notes: list[str]) -> list[tuple[Build, str]]:
    """Builds whose staged files may go, with the reason."""
    cutoff = now - timedelta(days=settings.STAGING_RETENTION_DAYS)
    kept, rules_known = _kept_build_ids(notes)
    builds = Build.objects.annotate(last_event=Max("events__created_at")).order_by("pk")
    expired = []
    for build in builds.filter(status__in=BUILD_FINAL).exclude(pk__in=kept):
        since = build.last_event or build.updated_at
        if since < cutoff:
            reason = f"build {build.build_id} is {build.status} since {since:%Y-%m-%d}"
            expired.append((build, reason))
    if rules_known:
        for build, since in _superseded(builds.filter(status=BuildStatus.LIVE)):
            if build.pk not in kept and since < cutoff:
                reason = (
                    f"build {build.build_id} is live, superseded by "
                    f"{settings.STAGING_KEEP_LIVE_BUILDS} newer live builds since {since:%Y-%m-%d}"
                )
                expired.append((build, reason))
    return expired


def _superseded(live_builds) -> list[tuple[Build, datetime]]:
    """Live builds with at least STAGING_KEEP_LIVE_BUILDS newer live builds, and since when: the
    moment the Nth newer one went live (or a later event of the build itself)."""
    newer = settings.STAGING_KEEP_LIVE_BUILDS
    ranked = [b for b in live_builds.order_by("-live_at", "-pk") if b.live_at is not None]
    superseded = []
    for rank in range(newer, len(ranked)):
        build = ranked[rank]
        since = ranked[rank - newer].live_at
        superseded.append((build, max(since, build.last_event or since)))
    return superseded


def _kept_build_ids(notes: list[str]) -> tuple[set[int], bool]:
    """Builds whose staged files stay whatever their age; and whether production's rules were
    read (when not, no live build may go)."""
    kept = set(
        ReleaseRequest.objects.filter(state__in=RELEASE_OPEN).values_list("build_id", flat=True)
    )
    try:
        named = _named_by_rules(buckets.production())
    except Exception as exc:  # unreadable rules: keep every live build rather than guess
        notes.append(f"kept every live build: cannot read production's {RELEASES_FILE} ({exc})")
        logger.warning("retention: %s", notes[-1])
        return kept, False
    kept.update(Build.objects.filter(build_id__in=named).values_list("pk", flat=True))
    return kept, True


def _named_by_rules(production: Bucket) -> set[str]:
    """Build ids that production's `desktop-releases.json` names (the feed serves them)."""
    raw = control_read(production, RELEASES_FILE)
    if raw is None:  # no rules yet: nothing is named
        return set()
    return rules_build_ids(control_parse(RELEASES_FILE, raw))  # ControlFileInvalid: see above


def _build_prune(item: BuildPrune, *, staging: Bucket, actor: str) -> BuildPrune | None:
    """Delete one build's staged objects and record it, in one transaction under the build's
    row lock (the write lock on SQLite), after checking again that it may go."""
    removed: list[ObjectInfo] = []
    failure: Exception | None = None
    with transaction.atomic():
        build = Build.objects.select_for_update().filter(pk=item.build.pk).first()
        if build is None or not _still_expired(build, item.build):
            return None
        for info in item.objects:
            try:
                staging.delete(info.key)
            except Exception as exc:  # record what did go, then let the task retry the rest
                failure = exc
                break
            removed.append(info)
        if removed:
            _build_record(build, item.reason, removed, actor=actor)
    if failure is not None:
        raise failure
    return BuildPrune(build=item.build, reason=item.reason, objects=tuple(removed))


def _still_expired(build: Build, planned: Build) -> bool:
    """Nothing moved since the plan: same status, and no release request opened for it."""
    if build.status != planned.status:
        return False
    return not ReleaseRequest.objects.filter(build=build, state__in=RELEASE_OPEN).exists()


def _build_record(build: Build, reason: str, removed: list[ObjectInfo], *, actor: str) -> None:
    prefix = build.staging_prefix
    names = [info.key.removeprefix(prefix) for info in removed]
    BuildFile.objects.filter(build=build, name__in=names).update(staged_at=None)
    size = sum(info.size for info in removed)
    audit_record(
        kind="staging.pruned",
        message=f"removed {len(removed)} staged file(s), {size} bytes: {reason}",
        build=build,
        actor=actor,
        data={"reason": reason, "bytes": size, "keys": [info.key for info in removed]},
    )


def _leftovers_record(leftovers: list[Leftover], *, actor: str) -> None:
    audit_record(
        kind="staging.swept",
        message=f"removed {len(leftovers)} unfinished write(s) older than a day from staging",
        actor=actor,
        data={"removed": [leftover_line(item) for item in leftovers]},
    )
