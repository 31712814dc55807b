"""Withdrawing an accepted release that is not live (README: Desired-state validation).

A release manager (permission `withdraw_release`) takes an approved (admin backend), merged or
"merged with unreviewed commits" (GitHub backend), or failed-to-promote release out of the
desired state, with a reason. Its state becomes `withdrawn`, the audit trail records who and
why, and a promotion is queued so that production converges without it:

- Admin backend: the release no longer counts among the approved ones, so neither its build's
  entry nor its rules are in the desired state any more.
- GitHub backend: the default branch is not touched (changing it takes a reviewed pull
  request). Promotion refuses the build while no other release of it is accepted, and a
  withdrawn unreviewed merge no longer holds back desktop-releases.json.

A live release is not withdrawn: production already serves it; a rollback moves users away.
"""

from __future__ import annotations

from django.db import transaction

from releases.models import ReleaseRequest, ReleaseState
from releases.queue import enqueue_after_commit
from releases.services import lifecycle
from releases.services.lifecycle import ACCEPTED, Event

MAX_REASON_LENGTH = 1000


class WithdrawRefused(Exception):
    """The release cannot be withdrawn now; the message says why."""


def withdraw_blocker(*, release: ReleaseRequest) -> str:
    """Why `release` cannot be withdrawn ("" when it can)."""
    if release.state == ReleaseState.LIVE:
        return "it is live (open a rollback to move users to another build)"
    if release.state == ReleaseState.FAILED and release.merged_at is not None:
        return ""  # accepted, then its promotion failed
    if release.state not in ACCEPTED:
        return f"it is {release.get_state_display()}, not accepted"
    return ""


def release_withdraw(*, release: ReleaseRequest, actor: str, reason: str) -> ReleaseRequest:
    """Withdraw `release`; raises WithdrawRefused (with why) when it cannot be."""
    reason = " ".join(reason.split())
    if not reason:
        raise ValueError("a reason is required")
    if len(reason) > MAX_REASON_LENGTH:
        raise ValueError(f"the reason is longer than {MAX_REASON_LENGTH} characters")
    with transaction.atomic():
        # The row lock orders a withdrawal against a promotion marking the release live.
        locked = ReleaseRequest.objects.select_for_update().get(pk=release.pk)
        blocker = withdraw_blocker(release=locked)
        if blocker:
            raise WithdrawRefused(blocker)
        previous, shown = locked.state, locked.get_state_display()
        lifecycle.move(
            release=locked,
            step="withdraw",
            reason=f"withdrawn by {actor}: {reason}",
            event=Event(
                kind="release.withdrawn",
                message=f"{release} withdrawn by {actor} (was {shown}): {reason}",
                actor=actor,
                data={"reason": reason, "previous_state": previous},
            ),
        )
        _settle_build(locked)
        _queue_promotion(reason=f"{release} withdrawn", actor=actor)
    locked.refresh_from_db()
    return locked


def _settle_build(release: ReleaseRequest) -> None:
    """An approved build with no other accepted release is back to "staged": its files stay,
    and a new release request (a re-release) can reuse them."""
    others = ReleaseRequest.objects.filter(build_id=release.build_id).exclude(pk=release.pk)
    if not others.filter(state__in=(*ACCEPTED, ReleaseState.LIVE)).exists():
        lifecycle.move(build=release.build, build_step="unapprove")


def _queue_promotion(*, reason: str, actor: str) -> None:
    # A broker outage is logged; the periodic reconcile converges anyway.
    enqueue_after_commit("releases.tasks.promote", reason, actor)
