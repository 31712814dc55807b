"""Opening the review of a staged build (docs/review.md).

`review_open` is the single entry point staging calls once a build is staged and verified; the
configured review backend opens it (releases/services/review_backends/: a pull request on
GitHub, or a release request waiting for approvals in the admin). A failed review is retried
from the admin (`review_retry`).
"""

from __future__ import annotations

from collections.abc import Iterable

from releases.models import ReleaseRequest, ReleaseState
from releases.queue import enqueue_after_commit
from releases.services import lifecycle
from releases.services.audit import audit_record
from releases.services.lifecycle import FILES_STAGED
from releases.services.review_backends import review_backend


def review_open(*, release: ReleaseRequest) -> None:
    """Open the review for `release` with the configured backend (idempotent)."""
    if not lifecycle.allows(release, "open_review"):
        return
    review_backend().release_open(release)


def review_blocker(*, release: ReleaseRequest) -> str:
    """Why the review of `release` cannot be retried now ("" when it can)."""
    if release.state not in (ReleaseState.FAILED, ReleaseState.AWAITING_REVIEW):
        return f"it is {release.get_state_display()}"
    if not lifecycle.allows(release, "open_review"):
        return "it was accepted: its promotion is retried by reconcile, not by a new review"
    if release.build.status not in FILES_STAGED:
        return f"its build is {release.build.get_status_display()}, not staged"
    return ""


def review_retry(*, releases: Iterable[ReleaseRequest], actor: str) -> tuple[int, list[str]]:
    """Queue `releases.tasks.review_open` for each release whose review can be retried.
    Returns how many were queued and why the others were not."""
    queued, skipped = 0, []
    for release in releases:
        blocker = review_blocker(release=release)
        if blocker:
            skipped.append(f"#{release.pk} ({blocker})")
            continue
        audit_record(
            kind="review.retry", message="review retry requested", actor=actor, release=release
        )
        # A broker outage is logged; the review stays retryable.
        enqueue_after_commit("releases.tasks.review_open", release.pk)
        queued += 1
    return queued, skipped
