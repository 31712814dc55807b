"""A reconcile someone asked for (admin, API, command) or the periodic one (beat).

Asking is recorded at once with the person's name; the run's outcome is recorded too, with
the same name, even when production was already in sync (the beat's quiet runs are not).
"""

from __future__ import annotations

from releases.queue import enqueue_after_commit
from releases.services.audit import audit_record
from releases.services.promotion import PromotionResult, promotion_run

BEAT = "reconcile (beat)"


def reconcile_request(*, actor: str) -> None:
    """Record the request and queue the run after commit."""
    audit_record(kind="reconcile.requested", message=f"{actor} asked for a reconcile", actor=actor)
    # A broker outage is logged; the periodic reconcile runs anyway.
    enqueue_after_commit("releases.tasks.reconcile", actor=actor)


def reconcile_run(*, actor: str = "", dry_run: bool = False) -> PromotionResult:
    """Reconcile now; a person's run that found nothing to do is recorded as such."""
    actor = actor or BEAT
    result = promotion_run(reason="reconcile", actor=actor, dry_run=dry_run)
    if result.in_sync and not dry_run and actor != BEAT:
        audit_record(
            kind="reconcile.in_sync",
            message=f"reconcile asked by {actor}: production already matches the desired state",
            actor=actor,
        )
    return result
