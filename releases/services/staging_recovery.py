"""Finding staging work that no worker holds any more, so it is queued again.

A worker killed while it stages a build (SIGKILL, OOM, a lost machine) takes its task with it
on the embedded broker (`make run`'s SQLite file marks a message delivered when a worker takes
it, and never hands it out again), and also on Redis while it is holding a retry's countdown.
Left alone, the release would stay `pending` and its build `received` or `staging` for ever.

A release request is lost when it is still `pending`, its build is `received`, `staging` or
`staged` (review not opened yet), and neither has changed for STAGING_LEASE_SECONDS; for a
build being staged, its lease (`lease_renewed_at`, which a staging worker renews every quarter
of that) must have lapsed too. Beat checks as often, and each lost
request is queued again once per period (`staging.requeued` in the trail). A copy queued while
the first is merely waiting in a long queue does no harm: staging claims the build with a
conditional update and skips files already staged, and a task for a build that is staged only
opens the review, which opens once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from releases.models import BuildStatus, ReleaseRequest, ReleaseState
from releases.services.audit import audit_record

UNFINISHED = (BuildStatus.RECEIVED, BuildStatus.STAGING, BuildStatus.STAGED)


def staging_lost(*, now: datetime | None = None) -> list[int]:
    """The ids of the lost release requests, each marked as queued again now (see above)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.STAGING_LEASE_SECONDS)
    lease_lapsed = (
        ~Q(build__status=BuildStatus.STAGING)
        | Q(build__lease_renewed_at__isnull=True)
        | Q(build__lease_renewed_at__lt=stale)
    )
    lost = ReleaseRequest.objects.filter(
        lease_lapsed,
        state=ReleaseState.PENDING,
        updated_at__lt=stale,
        build__status__in=UNFINISHED,
        build__updated_at__lt=stale,
    ).select_related("build")
    found = []
    for release in lost.order_by("pk"):
        # Conditional: two sweeps at once (two beat processes) queue it once.
        taken = ReleaseRequest.objects.filter(
            pk=release.pk, state=ReleaseState.PENDING, updated_at=release.updated_at
        ).update(updated_at=now)
        if not taken:
            continue
        idle = int((now - max(release.updated_at, release.build.updated_at)).total_seconds())
        audit_record(
            kind="staging.requeued",
            message=(
                f"build {release.build.build_id} is {release.build.status} and no worker has "
                f"touched it for {idle}s (its worker stopped); staging queued again"
            ),
            release=release,
            data={"build_status": release.build.status, "idle_seconds": idle},
        )
        found.append(release.pk)
    return found
