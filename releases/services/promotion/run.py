"""Running a promotion plan: copy, verify, publish, then record who/when (SPEC §7)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from releases import buckets
from releases.buckets import Bucket, BucketError
from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services.audit import audit_record
from releases.services.promotion.desired import DesiredStateError, desired_state_read
from releases.services.promotion.lock import promotion_lock
from releases.services.promotion.plan import Copy, Plan, promotion_plan, same_object

logger = logging.getLogger(__name__)

# Release requests that a promotion of their build turns live (a merge webhook may have been
# missed, so reviewed-but-not-merged states count when the build is on the default branch).
OPEN_STATES = (
    ReleaseState.AWAITING_REVIEW,
    ReleaseState.IN_REVIEW,
    ReleaseState.CHANGES_REQUESTED,
    ReleaseState.APPROVED,
    ReleaseState.MERGED,
    ReleaseState.FAILED,
)


OUTCOME_KINDS = ("promotion.failed", "promotion.succeeded", "reconcile.repaired")


class PromotionFailed(Exception):
    """The promotion could not bring production to the desired state (recorded in the audit)."""


@dataclass
class PromotionResult:
    plan: Plan
    dry_run: bool = False
    copied: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    live: list[str] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return self.plan.in_sync


def promotion_run(*, reason: str, actor: str = "", dry_run: bool = False) -> PromotionResult:
    """Bring production to the desired state (default branch or approved releases).

    Serialised by one lock; idempotent; resumable after a crash at any point.
    """
    staging = buckets.staging(role="promoter")
    production = buckets.production(role="promoter")
    with promotion_lock():
        try:
            desired = desired_state_read(production=production)
        except DesiredStateError as exc:
            _record_failure_once(str(exc), actor=actor)
            raise PromotionFailed(str(exc)) from exc
        plan = promotion_plan(desired=desired, staging=staging, production=production)
        result = PromotionResult(plan=plan, dry_run=dry_run)
        if dry_run:
            return result
        _execute(plan, result, staging=staging, production=production)
        if plan.missing:
            _record_missing(plan, reason=reason, actor=actor)
            raise PromotionFailed("; ".join(f"{b}: {why}" for b, why in plan.missing.items()))
        result.live = _mark_live(desired.build_ids, plan=plan)
        if result.copied or result.written:
            audit_record(
                kind="reconcile.repaired" if reason == "reconcile" else "promotion.succeeded",
                message=f"production updated from the {desired.source} ({reason})",
                actor=actor,
                data={"reason": reason, "copied": len(result.copied), "written": result.written},
            )
    if result.written:
        _invalidate_feed_metadata()
    return result


def _record_failure_once(message: str, *, actor: str) -> None:
    """Audit a failure, but not the same one again on every periodic reconcile (an outage of
    GitHub would otherwise add an event every few minutes)."""
    last = (
        AuditEvent.objects.filter(kind__in=OUTCOME_KINDS, build__isnull=True)
        .order_by("-sequence")
        .values_list("kind", "message")
        .first()
    )
    if last != ("promotion.failed", message):
        audit_record(kind="promotion.failed", message=message, actor=actor)


def _copy(copy: Copy, *, staging: Bucket, production: Bucket) -> None:
    copied = production.copy_from(staging, copy.source, copy.key)
    source = staging.head(copy.source)
    if source is None or not same_object(source, copied):
        raise BucketError(f"{copy.key}: the copy does not match {copy.source}")


def _execute(plan: Plan, result: PromotionResult, *, staging: Bucket, production: Bucket) -> None:
    for copy in plan.copies:
        _copy(copy, staging=staging, production=production)
        logger.info("promoted %s → %s", copy.source, copy.key)
        result.copied.append(copy.key)
    for write in plan.writes:
        info = production.write_bytes(write.key, write.data)
        if info.size != len(write.data):
            raise BucketError(f"{write.key}: wrote {len(write.data)} bytes, found {info.size}")
        logger.info("wrote %s (%d bytes)", write.key, info.size)
        result.written.append(write.key)


def _record_missing(plan: Plan, *, reason: str, actor: str) -> None:
    for build_id, why in plan.missing.items():
        message = f"cannot promote build {build_id}: {why}"
        build = Build.objects.filter(build_id=build_id).first()
        if build is not None and build.failure_reason == message:
            continue  # already recorded; a periodic reconcile must not flood the trail
        if build is not None:
            Build.objects.filter(pk=build.pk).update(
                status=BuildStatus.FAILED, failure_reason=message
            )
            build.release_requests.filter(state=ReleaseState.MERGED).update(
                state=ReleaseState.FAILED, failure_reason=message
            )
        audit_record(
            kind="promotion.failed",
            message=message,
            build=build,
            actor=actor,
            data={"build_id": build_id, "reason": reason},
        )


def _mark_live(build_ids: list[str], *, plan: Plan) -> list[str]:
    """Releases and builds now in production become live, with the time and the merger."""
    now = timezone.now()
    live = []
    releases = ReleaseRequest.objects.filter(build__build_id__in=build_ids).select_related("build")
    # A merged (or admin-approved) request is live now; an open one only when its build was
    # promoted by this run (its merge webhook was missed: reconcile repairs it).
    accepted = Q(state=ReleaseState.MERGED) | Q(state=ReleaseState.FAILED, merged_at__isnull=False)
    if settings.REVIEW_BACKEND == "admin":
        accepted |= Q(state=ReleaseState.APPROVED)
    else:
        new = plan.new_build_ids
        accepted |= Q(state__in=OPEN_STATES, build__build_id__in=new, kind="release")
    releases = [r for r in releases.filter(accepted) if _merged(r, plan=plan)]
    for release in releases:
        ReleaseRequest.objects.filter(pk=release.pk).update(
            state=ReleaseState.LIVE, live_at=now, failure_reason=""
        )
        audit_record(
            kind="release.live",
            message=f"build {release.build.build_id} is live"
            + (f" (merged by {release.merged_by})" if release.merged_by else ""),
            release=release,
            actor=release.merged_by,
            data={"merged_at": release.merged_at, "live_at": now},
        )
        live.append(release.build.build_id)
    Build.objects.filter(build_id__in=build_ids).exclude(status=BuildStatus.LIVE).update(
        status=BuildStatus.LIVE, live_at=now, failure_reason=""
    )
    return live


def _merged(release: ReleaseRequest, *, plan: Plan) -> bool:
    """Whether an open release of a just-promoted build was merged (its webhook was missed).

    Several release requests can exist for one build (re-releases); GitHub says which PR was
    merged. Unreachable GitHub: the build is on the default branch, so count it as merged.
    """
    if release.state not in OPEN_STATES or release.state == ReleaseState.MERGED:
        return True
    if settings.REVIEW_BACKEND != "github" or not release.pr_number:
        return True
    from releases import github

    try:
        pull = github.pull_get(release.pr_number)
    except github.GitHubError as exc:
        logger.warning("cannot ask GitHub about PR #%s: %s", release.pr_number, exc)
        return True
    if pull.merged and not release.merged_by:
        # The merge webhook was missed: take who merged it, and when, from GitHub itself.
        release.merged_by, release.merged_at = pull.merged_by, pull.merged_at
        ReleaseRequest.objects.filter(pk=release.pk).update(
            merged_by=pull.merged_by, merged_at=pull.merged_at
        )
    return pull.merged


def _invalidate_feed_metadata() -> None:
    """Tell the feed its cached `desktop-*.json` are stale (the feed owns the mechanism)."""
    try:
        from cdn.metadata import metadata_invalidate
    except ImportError:  # the feed is not installed in this process's code base yet
        logger.warning("cdn.metadata.metadata_invalidate is unavailable; the feed's cache expires")
        return
    metadata_invalidate()
