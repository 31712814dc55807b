"""Review inside the admin (`REVIEW_BACKEND=admin`, SPEC §6): approve or reject a release.

`REQUIRED_APPROVALS` distinct people must approve; then the release is `approved` and
promoted exactly as a merged PR would be. One rejection rejects it. Decisions are rows
(`Approval`, one per person and release) and audit events.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from releases.models import Approval, ReleaseRequest
from releases.services import lifecycle
from releases.services.audit import audit_record
from releases.services.lifecycle import DECIDABLE, Event


class DecisionRefused(Exception):
    """The release cannot be decided now; the message says why."""


def release_decide(*, release: ReleaseRequest, user, approve: bool, comment: str = "") -> str:
    """Record `user`'s decision; returns what happened (`approved`, `rejected`, `1/2 …`)."""
    if settings.REVIEW_BACKEND != "admin":
        raise DecisionRefused("reviews happen on GitHub (REVIEW_BACKEND=github)")
    with transaction.atomic():
        # The row lock makes two approvers racing for the last approval promote once.
        locked = ReleaseRequest.objects.select_for_update().get(pk=release.pk)
        if locked.state not in DECIDABLE:
            raise DecisionRefused(f"it is {locked.get_state_display().lower()}")
        Approval.objects.update_or_create(
            release=locked, user=user, defaults={"approved": approve, "comment": comment}
        )
        name = user.get_username()
        audit_record(
            kind="review.approved" if approve else "review.rejected",
            message=f"{name} {'approved' if approve else 'rejected'} {locked}",
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
    from releases import tasks

    reason = f"{release} approved in the admin"
    # robust: a broker outage is logged; the periodic reconcile promotes the approval anyway.
    transaction.on_commit(lambda: tasks.promote.delay(reason, merged_by), robust=True)
    return "approved"
