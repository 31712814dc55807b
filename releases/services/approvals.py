"""Review inside the admin (the admin review backend, docs/review.md): approve or reject.

`REQUIRED_APPROVALS` distinct people must approve; then the release is `approved` and
promoted exactly as a merged PR would be. One rejection (with a reason) rejects it. Decisions
are rows (`Approval`, one per person and release) and audit events.

The two-person rule holds for every caller (admin page, API, commands): the person who asked
for a release (`requested_by`, or anyone who retried it) never approves it, and each person
decides once; a refused decision writes nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from releases.models import Approval, AuditEvent, ReleaseRequest
from releases.queue import enqueue_after_commit
from releases.services import lifecycle
from releases.services.audit import audit_record
from releases.services.lifecycle import DECIDABLE, Event
from releases.services.review_backends import review_backend

# Audit kinds whose actor asked for the release again: they count as its requesters.
RETRY_KINDS = ("staging.retry", "review.retry")


class DecisionRefused(Exception):
    """The release cannot be decided now; the message says why."""


def release_requesters(*, release: ReleaseRequest) -> set[str]:
    """Who asked for this release: the opener (rollback, staged by hand) and every retrier."""
    retriers = AuditEvent.objects.filter(release=release, kind__in=RETRY_KINDS).values_list(
        "actor", flat=True
    )
    return {name for name in [release.requested_by, *retriers] if name}


def _is_requester(username: str, requesters: set[str]) -> bool:
    # Commands record "<os user> (manage.py stage)": the same name counts as the same person.
    return any(name == username or name.startswith(f"{username} (") for name in requesters)


def decision_blocker(*, release: ReleaseRequest, user, approve: bool) -> str | None:
    """Why `user` may not approve (or reject) `release` now; None when they may."""
    elsewhere = review_backend().decision_blocker()
    if elsewhere:
        return elsewhere
    if not user.has_perm("releases.approve_release"):
        return "needs the approve_release permission (approvers, release managers)"
    if release.state not in DECIDABLE:
        return f"it is {release.get_state_display()}"
    earlier = Approval.objects.filter(release=release, user=user).first()
    if earlier is not None:
        verdict = "approved" if earlier.approved else "rejected"
        return f"{user.get_username()} already {verdict} it; each person decides once"
    if approve and _is_requester(user.get_username(), release_requesters(release=release)):
        return (
            f"{user.get_username()} asked for this release; "
            "another person must approve it (two-person rule)"
        )
    return None


def release_decide(*, release: ReleaseRequest, user, approve: bool, comment: str = "") -> str:
    """Record `user`'s decision; returns what happened (`approved`, `rejected`, `1/2 …`).

    Refused (DecisionRefused, nothing written) when the rules above say no."""
    comment = comment.strip()
    if not approve and not comment:
        raise DecisionRefused("a reason is required to reject")
    with transaction.atomic():
        # The row lock makes two approvers racing for the last approval promote once, and the
        # same person clicking twice decide once.
        locked = (
            ReleaseRequest.objects.select_for_update().select_related("build").get(pk=release.pk)
        )
        blocker = decision_blocker(release=locked, user=user, approve=approve)
        if blocker:
            raise DecisionRefused(blocker)
        Approval.objects.create(release=locked, user=user, approved=approve, comment=comment)
        name = user.get_username()
        verdict = "approved" if approve else "rejected"
        audit_record(
            kind=f"review.{verdict}",
            message=f"{name} {verdict} {locked}" + (f": {comment}" if comment else ""),
            release=locked,
            actor=name,
            data={"comment": comment},
        )
        if not approve:
            lifecycle.move(release=locked, step="reject", build_step="reject")
            return "rejected"
        return _count(locked)


def _count(release: ReleaseRequest) -> str:
    approvers = sorted(
        Approval.objects.filter(release=release, approved=True)
        .select_related("user")
        .values_list("user__username", flat=True)
    )
    if len(approvers) < settings.REQUIRED_APPROVALS:
        return f"{len(approvers)}/{settings.REQUIRED_APPROVALS} approvals"
    merged_by = ", ".join(approvers)
    lifecycle.move(
        release=release,
        step="approve",
        build_step="approve",
        fields={"merged_by": merged_by, "merged_at": timezone.now()},
        event=Event(
            kind="review.accepted",
            message=f"{release} approved by {merged_by}; promotion queued",
            actor=merged_by,
        ),
    )
    reason = f"{release} approved in the admin"
    # A broker outage is logged; the periodic reconcile promotes the approval anyway.
    enqueue_after_commit("releases.tasks.promote", reason, merged_by)
    return "approved"
