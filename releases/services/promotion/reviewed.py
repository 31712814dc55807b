"""GitHub backend: does the review cover what was merged? (README: What the review covers)

GitHub gives an approval on one commit. Commits pushed to the branch after it (a fix-up, a
conflict resolution, an edit that names another build) are not covered by it, yet a merge takes
them all. So before a merged release reaches production, promotion asks GitHub for the pull
request's head at merge and for its reviews. The merge is covered when the last approving review
was given on that very head and no reviewer's latest verdict is "changes requested".

A merge that is not covered is recorded as "merged with unreviewed commits" (the release's
state and reason, audit event `github.pr_merged_unreviewed`). With `REQUIRE_REVIEWED_HEAD` (the
default) its build is not promoted and a changed desktop-releases.json waits, until a review of
that head arrives (checked again on every promotion) or a release manager withdraws the release.
Without it the merge is promoted as before, and the event stays in the trail.

This runs in the promotion worker, through the API, not in the webhook receiver: the receiver
stays fast, and a merge whose webhook was missed is checked all the same when reconcile finds
its build on the default branch.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db.models import Q

from releases.integrations import github
from releases.models import AuditEvent, ReleaseRequest, ReleaseState
from releases.services import lifecycle
from releases.services.lifecycle import UNMERGED, Event
from releases.services.promotion.plan import Gate, Refusal

logger = logging.getLogger(__name__)


def review_verdict(reviews: list[github.ReviewInfo], *, head: str) -> tuple[str, str]:
    """(the commit the last approval was given on, why `head` is not covered — "" if it is)."""
    approvals = [r for r in reviews if r.state == "APPROVED"]  # a dismissed one is DISMISSED
    latest: dict[str, github.ReviewInfo] = {}
    for review in reviews:
        if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review.user] = review
    if not approvals:
        return "", f"merged at {head[:12]} without an approving review"
    approved = approvals[-1]
    if approved.commit_id != head:
        return approved.commit_id, (
            f"merged at {head[:12]}, but the last approval ({approved.user}) was given on "
            f"{approved.commit_id[:12]}"
        )
    blocking = sorted(user for user, r in latest.items() if r.state == "CHANGES_REQUESTED")
    if blocking:
        return approved.commit_id, f"merged while {', '.join(blocking)} requested changes"
    return approved.commit_id, ""


def merge_gate(*, new_build_ids: list[str]) -> Gate:
    """Which new builds the GitHub review does not let through, and why the rules must wait."""
    unknown = _check_merges(new_build_ids)
    refused = {bid: why for bid in new_build_ids if (why := _refusal(bid, unknown))}
    if not settings.REQUIRE_REVIEWED_HEAD:
        return Gate(refused=refused)
    unreviewed = ReleaseRequest.objects.filter(state=ReleaseState.MERGED_UNREVIEWED)
    held, notified_by = [], {}
    for r in unreviewed.select_related("build").order_by("pk"):
        reason = (
            f"pull request #{r.pr_number} (build {r.build.build_id}) was merged with unreviewed "
            f"commits; {r.failure_reason.split(': ', 1)[-1]}"
        )
        held.append(reason)
        if announcement := _announced_by(r):
            notified_by[reason] = announcement
    return Gate(
        refused=refused, held=held + sorted(set(unknown.values())), held_notified_by=notified_by
    )


def _announced_by(release: ReleaseRequest) -> int | None:
    """The `github.pr_merged_unreviewed` event that told people about this merge."""
    return (
        AuditEvent.objects.filter(kind="github.pr_merged_unreviewed", release=release)
        .order_by("-sequence")
        .values_list("pk", flat=True)
        .first()
    )


def _check_merges(new_build_ids: list[str]) -> dict[int, str]:
    """Check every merge not checked yet; returns release id → why GitHub could not say."""
    candidates = ReleaseRequest.objects.filter(pr_number__isnull=False).filter(
        Q(state=ReleaseState.MERGED, merged_head_sha="")
        | Q(state=ReleaseState.MERGED_UNREVIEWED)
        | Q(state__in=UNMERGED, merged_at__isnull=True, build__build_id__in=new_build_ids)
    )
    unknown = {}
    for release in candidates.select_related("build").order_by("pk"):
        try:
            pull = github.pull_get(release.pr_number)
            if pull.merged:
                _record(release, pull, github.pull_reviews(release.pr_number))
        except github.GitHubError as exc:
            logger.warning("cannot check the review of PR #%s: %s", release.pr_number, exc)
            unknown[release.pk] = f"cannot check the review of pull request #{release.pr_number}"
    return unknown


def _record(release: ReleaseRequest, pull: github.PullInfo, reviews) -> None:
    approved_sha, why = review_verdict(reviews, head=pull.head_sha)
    hold = bool(why) and settings.REQUIRE_REVIEWED_HEAD
    fields = {"merged_head_sha": pull.head_sha, "reviewed_head_sha": approved_sha}
    if not release.merged_by and pull.merged_by:  # the merge webhook was missed
        fields.update(merged_by=pull.merged_by, merged_at=pull.merged_at)
    was_held = release.state == ReleaseState.MERGED_UNREVIEWED
    # A release that was still in review (its merge webhook was missed) approves its build now.
    build_step = "approve" if release.state in UNMERGED and not hold else ""
    event = None
    if why and not was_held:
        outcome = "not promoted (REQUIRE_REVIEWED_HEAD)" if hold else "promoted anyway"
        message = f"was merged with unreviewed commits: {why}; {outcome}"
        event = _announcement(pull, message, kind="github.pr_merged_unreviewed")
    elif was_held and not why:
        message = "is now covered by a review of its head commit"
        event = _announcement(pull, message, kind="github.pr_merge_covered")
    lifecycle.move(
        release=release,
        step="hold_merge" if hold else "cover_merge",
        build_step=build_step,
        reason=f"merged with unreviewed commits: {why}" if hold else "",
        fields=fields,
        event=event,
    )


def _announcement(pull: github.PullInfo, message: str, *, kind: str) -> Event:
    return Event(
        kind=kind,
        message=f"pull request #{pull.number} {message}",
        actor=pull.merged_by,
        url=pull.url if len(pull.url) <= 500 else "",
        data={"pr": pull.number, "head": pull.head_sha},
    )


def _refusal(build_id: str, unknown: dict[int, str]) -> Refusal | None:
    releases = list(
        ReleaseRequest.objects.filter(build__build_id=build_id, kind="release").order_by("pk")
    )
    if any(_accepted(r) for r in releases):
        return None
    withdrawn = [r for r in releases if r.state == ReleaseState.WITHDRAWN]
    if withdrawn:
        reason = withdrawn[-1].failure_reason or "withdrawn"
        return Refusal(reason, kind="release.withdrawn", fails_build=False, quiet=True)
    if not settings.REQUIRE_REVIEWED_HEAD:
        return None  # as before: the default branch is the desired state
    for release in reversed(releases):
        if release.pk in unknown:
            return Refusal(unknown[release.pk], kind="promotion.unreviewed", fails_build=False)
        if release.state == ReleaseState.MERGED_UNREVIEWED:
            return Refusal(
                release.failure_reason,
                kind="promotion.unreviewed",
                fails_build=False,
                notified_by=_announced_by(release),
            )
    return Refusal(
        f"build {build_id} is on the default branch, but no release pull request for it was "
        "merged at its approved head",
        kind="promotion.unreviewed",
        fails_build=False,
    )


def _accepted(release: ReleaseRequest) -> bool:
    if release.state in (ReleaseState.MERGED, ReleaseState.LIVE):
        return True
    return release.state == ReleaseState.FAILED and release.merged_at is not None
