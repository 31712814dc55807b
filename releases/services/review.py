"""Opening and tracking the review of a staged build (SPEC §6).

`review_open` is the single entry point staging calls once a build is staged and verified.
"""

from __future__ import annotations

from django.conf import settings

from releases.models import BuildStatus, ReleaseRequest, ReleaseState
from releases.services.audit import audit_record


def review_open(*, release: ReleaseRequest) -> None:
    """Open the review for `release` with the configured backend (idempotent)."""
    if release.state not in (
        ReleaseState.PENDING,
        ReleaseState.AWAITING_REVIEW,
        ReleaseState.FAILED,
    ):
        return
    build = release.build
    if settings.REVIEW_BACKEND == "admin":
        ReleaseRequest.objects.filter(pk=release.pk).update(state=ReleaseState.IN_REVIEW)
        type(build).objects.filter(pk=build.pk).update(status=BuildStatus.IN_REVIEW)
        audit_record(
            kind="review.awaiting_approval",
            message=f"waiting for {settings.REQUIRED_APPROVALS} approval(s) in the admin",
            release=release,
        )
        return
    # The GitHub backend (issue: review through GitHub) replaces this branch.
    ReleaseRequest.objects.filter(pk=release.pk).update(state=ReleaseState.AWAITING_REVIEW)
    audit_record(kind="review.awaiting", message="staged; awaiting the review", release=release)
