"""Running a promotion plan: copy, verify, publish, then record who/when (docs/promotion.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from cdn.metadata import metadata_invalidate
from releases.integrations import buckets
from releases.integrations.buckets import Bucket, BucketError
from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest
from releases.services import lifecycle
from releases.services.audit import audit_record
from releases.services.cdn_purge import cdn_purge_after_promotion
from releases.services.lifecycle import Event
from releases.services.promotion.desired import (
    DesiredState,
    DesiredStateError,
    DesiredStateInvalid,
    desired_state_read,
)
from releases.services.promotion.lock import promotion_lock
from releases.services.promotion.plan import Copy, Plan, promotion_plan, same_object
from releases.services.promotion.verdict import verdict_record
from releases.services.review_backends import review_backend

logger = logging.getLogger(__name__)

OUTCOME_KINDS = ("promotion.failed", "promotion.succeeded", "reconcile.repaired")


class PromotionFailed(Exception):
    """The promotion could not bring production to the desired state (recorded in the audit).
    `result` is what it did do (other builds may have been promoted), when it got that far."""

    def __init__(self, message: str, *, result: PromotionResult | None = None) -> None:
        super().__init__(message)
        self.result = result


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

    Serialised by one lock; idempotent; resumable after a crash at any point. A build that
    cannot be promoted is refused alone; an invalid desired-state rule leaves production's
    rules as they are. Either raises PromotionFailed once the rest is done.
    """
    staging = buckets.staging(role="promoter")
    production = buckets.production(role="promoter")
    with promotion_lock():
        desired = _desired(production, actor=actor, dry_run=dry_run)
        if dry_run:
            with transaction.atomic():
                plan = _plan(desired, staging=staging, production=production)
                transaction.set_rollback(True)  # not even the review checks leave a trace
            return PromotionResult(plan=plan, dry_run=True)
        plan = _plan(desired, staging=staging, production=production)
        result = PromotionResult(plan=plan)
        try:
            _execute(plan, result, staging=staging, production=production)
        except Exception as exc:
            _fail_promoted(plan, message=f"promotion failed: {exc}", actor=actor)
            raise
        _record_refusals(plan, reason=reason, actor=actor)
        verdict_record(
            problems=plan.invalid,
            source=desired.source,
            actor=actor,
            notified_by=plan.invalid_notified_by,
        )
        result.live = _mark_live(plan.listed, plan=plan)
        if result.copied or result.written:
            audit_record(
                kind="reconcile.repaired" if reason == "reconcile" else "promotion.succeeded",
                message=f"production updated from the {desired.source} ({reason})",
                actor=actor,
                data={"reason": reason, "copied": len(result.copied), "written": result.written},
            )
    if result.written:
        _invalidate_feed_metadata()
    cdn_purge_after_promotion(result=result, production=production, reason=reason, actor=actor)
    problems = [f"{b}: {why}" for b, why in plan.missing.items()] + plan.invalid
    if problems:
        raise PromotionFailed("; ".join(problems), result=result)
    return result


def _plan(desired: DesiredState, *, staging: Bucket, production: Bucket) -> Plan:
    return promotion_plan(
        desired=desired,
        staging=staging,
        production=production,
        review=lambda new_ids: review_backend().review_gate(new_build_ids=new_ids),
    )


def _desired(production: Bucket, *, actor: str, dry_run: bool) -> DesiredState:
    try:
        return desired_state_read(production=production, settle_halts=not dry_run)
    except DesiredStateInvalid as exc:
        if not dry_run:  # production keeps everything; say so once
            verdict_record(problems=[str(exc)], source="desired state", actor=actor)
        raise PromotionFailed(str(exc)) from exc
    except DesiredStateError as exc:
        _record_failure_once(str(exc), actor=actor)
        raise PromotionFailed(str(exc)) from exc


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
    # Production is immutable: the plan copies only to keys production does not hold. One that
    # appeared since (a hand edit) is never overwritten; the retried run will judge it.
    if production.head(copy.key) is not None:
        raise BucketError(f"{copy.key}: appeared in production during the promotion; kept")
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


def _record_refusals(plan: Plan, *, reason: str, actor: str) -> None:
    """Each refused build fails visibly, once: a periodic reconcile must not flood the trail."""
    for build_id, refusal in plan.refused.items():
        if refusal.quiet:
            continue
        message = f"cannot promote build {build_id}: {refusal.reason}"
        build = Build.objects.filter(build_id=build_id).first()
        if refusal.fails_build and build is not None and build.failure_reason != message:
            _refuse(build, message)
        last = (
            AuditEvent.objects.filter(kind=refusal.kind, data__build_id=build_id)
            .order_by("-sequence")
            .values_list("message", flat=True)
            .first()
        )
        if last == message:
            continue
        audit_record(
            kind=refusal.kind,
            message=message,
            build=build,
            actor=actor,
            data={"build_id": build_id, "reason": reason}
            | ({"notified_by": refusal.notified_by} if refusal.notified_by else {}),
        )


def _refuse(build: Build, message: str) -> None:
    """The build and its accepted releases fail with the reason; the releases stay accepted,
    so that the promotion after a fix (a re-staged build, a reconcile) makes them live."""
    with transaction.atomic():
        lifecycle.move(build=build, build_step="refuse", reason=message)
        for release in build.release_requests.all():
            lifecycle.move(release=release, step="fail_promotion", reason=message)


def _fail_promoted(plan: Plan, *, message: str, actor: str) -> None:
    """Production could not be brought to the plan (unreachable, full, a copy that does not
    match): each release whose build this run was to publish names the reason, once (the
    periodic reconcile retries it), and its build does too."""
    new = [bid for bid in plan.new_build_ids if bid not in plan.refused]
    releases = ReleaseRequest.objects.filter(build__build_id__in=new).select_related("build")
    for release in releases.exclude(failure_reason=message).order_by("pk"):
        event = Event(kind="promotion.failed", message=message, actor=actor)
        with transaction.atomic():
            if lifecycle.move(release=release, step="fail_promotion", reason=message, event=event):
                lifecycle.move(build=release.build, build_step="promotion_failed", reason=message)


def _mark_live(build_ids: list[str], *, plan: Plan) -> list[str]:
    """Releases and builds now in production become live, with the time and the merger.

    A release whose rules were not published (the desired state is invalid) stays accepted,
    not live: it can still be withdrawn, and goes live once its rules are out."""
    now = timezone.now()
    live = []
    releases = ReleaseRequest.objects.filter(build__build_id__in=build_ids).order_by("pk")
    for release in releases.select_related("build"):
        if plan.invalid and release.release_info:
            continue
        event = Event(
            kind="release.live",
            message=f"build {release.build.build_id} is live"
            + (f" (merged by {release.merged_by})" if release.merged_by else ""),
            actor=release.merged_by,
            data={"merged_at": release.merged_at, "live_at": now},
        )
        if lifecycle.move(release=release, step="go_live", event=event, fields={"live_at": now}):
            live.append(release.build.build_id)
    for build in Build.objects.filter(build_id__in=build_ids).exclude(status=BuildStatus.LIVE):
        lifecycle.move(build=build, build_step="go_live", fields={"live_at": now})
    return live


def _invalidate_feed_metadata() -> None:
    """Tell the feed its cached `desktop-*.json` are stale (the feed owns the mechanism)."""
    metadata_invalidate()
