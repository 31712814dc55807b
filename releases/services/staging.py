"""Staging a build: ToDesktop → staging bucket, verified (docs/staging.md).

`build_stage` claims the build with a conditional update (a lease that a live worker keeps
fresh, so a redelivered task takes over only from a dead worker), reads the manifests, streams
every file into `<buildId>/<fileName>` with a bounded pool, hashes while streaming, verifies
every hash and size the manifests give, and only then marks the build `staged` and opens the
review. Files already staged with matching size and hashes are skipped, so a redelivered or
retried task resumes where the last one stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError

from releases.errors import TransientError
from releases.integrations import buckets, todesktop
from releases.models import Build, ReleaseRequest, ReleaseState
from releases.services import lifecycle, manifests
from releases.services.audit import audit_record
from releases.services.lifecycle import BUILD_FINAL, FILES_STAGED, Event
from releases.services.ownership import names_refusal
from releases.services.review import review_open
from releases.services.staging_files import (
    StagingFailed,
    StagingObserver,
    files_stage,
    files_verify,
)

logger = logging.getLogger(__name__)


def _transient_errors() -> tuple[type[BaseException], ...]:
    # OperationalError: SQLite's "database is locked" (a writer held the lock longer than the
    # busy timeout) or a lost PostgreSQL connection. Both are temporary; the build is not at fault.
    return (
        todesktop.OriginUnavailable,
        buckets.BucketError,
        OSError,
        OperationalError,
        InterfaceError,
    )


def build_stage(
    *,
    release_id: int,
    platforms: Collection[str] | None = None,
    open_review: bool = True,
    observer: StagingObserver | None = None,
) -> None:
    """Stage every file of the release's build, verify it, then open the review.

    `manage.py stage` passes the rest: `platforms` limits the manifests fetched (None: all),
    `open_review=False` leaves the release awaiting review, `observer` sees the bytes move.
    """
    release = ReleaseRequest.objects.select_related("build").filter(pk=release_id).first()
    if release is None:
        return
    build = release.build
    if build.status in FILES_STAGED:
        staging_reuse(release=release, open_review=open_review)
        return
    if build.status in BUILD_FINAL:
        reason = f"build {build.build_id} is {build.status}: {build.failure_reason}"
        lifecycle.move(release=release, step="fail_staging", reason=reason)
        return
    if not lifecycle.build_claim(build=build, release=release):
        # Another worker holds a fresh lease; come back once it has finished (or died).
        raise TransientError(f"build {build.build_id} is being staged by another worker")
    try:
        _stage(build, release, platforms=platforms, open_review=open_review, observer=observer)
    except StagingFailed as exc:
        staging_fail(build=build, release=release, reason=str(exc))
    except _transient_errors() as exc:
        _retry_prepare(build, release, exc)
        raise TransientError(str(exc)) from exc
    except Exception:
        # Unexpected: the task gives up (`staging_give_up`), which can then fail the build with
        # the reason instead of leaving it `staging` with nobody staging it.
        _claim_return(build)
        raise


def _retry_prepare(build: Build, release: ReleaseRequest, exc: Exception) -> None:
    """Give the claim back so the retry (here or on another worker) can start at once, and
    say so in the trail. When the database itself failed (locked beyond the busy timeout),
    these writes can fail too: the task is retried all the same, and the claim lapses after
    STAGING_LEASE_SECONDS."""
    try:
        _claim_return(build)
        audit_record(kind="staging.retrying", message=f"will retry: {exc}", release=release)
    except DatabaseError as error:
        logger.warning("staging of %s will be retried (not recorded: %s)", build.build_id, error)


def _claim_return(build: Build) -> None:
    lifecycle.move(build=build, build_step="unclaim")


def _stage(
    build: Build,
    release: ReleaseRequest,
    *,
    platforms: Collection[str] | None = None,
    open_review: bool = True,
    observer: StagingObserver | None = None,
) -> None:
    source = todesktop.shown(settings.TODESKTOP_DOWNLOAD_BASE_URL)  # never its credentials
    audit_record(
        kind="staging.started",
        message=f"staging {build.build_id} from {source}",
        release=release,
    )
    try:
        plan = manifests.build_plan(
            app_id=build.app_id,
            build_id=build.build_id,
            progress=lambda: lifecycle.lease_renew(build=build),
            platforms=platforms,
        )
    except manifests.ManifestError as exc:
        raise StagingFailed(str(exc))
    except todesktop.OriginError as exc:
        if isinstance(exc, todesktop.OriginUnavailable):
            raise
        raise StagingFailed(f"manifests: {exc}")
    _plan_record(build, release, plan)
    # Before any download: a name that belongs to another build must never reach a bucket.
    refused = names_refusal(build=build, names=[*plan.manifests, *plan.files, *plan.blockmaps])
    if refused:
        raise StagingFailed(refused)
    files_stage(build=build, plan=plan, observer=observer)
    summary = files_verify(build=build, plan=plan)
    event = Event(kind="staging.verified", message=summary)
    if not lifecycle.move(build=build, build_step="stage", release=release, event=event):
        # Only the run holding the claim stages the build: another one took over a lease that
        # went stale while this run was stuck; that run opens the review.
        logger.warning("staging of %s finished after losing its claim", build.build_id)
        return
    release.refresh_from_db()
    if open_review:
        review_open(release=release)
    else:
        review_defer(release=release)


def _plan_record(build: Build, release: ReleaseRequest, plan: manifests.BuildPlan) -> None:
    fields = {"platforms": plan.platforms}
    if plan.version and not build.version:
        fields["version"] = plan.version
    Build.objects.filter(pk=build.pk).update(**fields)
    lifecycle.lease_renew(build=build)
    audit_record(
        kind="staging.manifests",
        message=(
            f"manifests for {', '.join(plan.platforms)}: {len(plan.files)} artifacts"
            + "".join(f"; {note}" for note in plan.notes)
        ),
        release=release,
        data={"platforms": plan.platforms, "notes": plan.notes, "files": sorted(plan.files)},
    )


def staging_reuse(*, release: ReleaseRequest, open_review: bool = True) -> None:
    """A re-release (or a redelivered task after staging finished): no download, open review."""
    if release.state == ReleaseState.PENDING:
        audit_record(
            kind="staging.reused",
            message=f"build {release.build.build_id} is already staged; reusing its files",
            release=release,
        )
    if open_review:
        review_open(release=release)
    else:
        review_defer(release=release)


def review_defer(*, release: ReleaseRequest) -> None:
    """Staged without opening the review (`manage.py stage --no-review`): the release waits;
    the admin action "Retry opening the review (PR)" opens it later."""
    event = Event(kind="review.deferred", message="staged; the review was not opened (--no-review)")
    lifecycle.move(release=release, step="defer_review", event=event)


def staging_fail(*, build: Build, release: ReleaseRequest, reason: str) -> None:
    """The build failed for good (bad manifest, unsafe name, mismatch): no review is opened."""
    lifecycle.move(
        release=release,
        step="fail_staging",
        build=build,
        build_step="fail",
        independent=True,  # the build fails even if its request moved on meanwhile
        reason=reason,
        event=Event(kind="staging.failed", message=reason),
    )
    logger.warning("staging of %s failed: %s", build.build_id, reason)


def staging_give_up(*, release_id: int, reason: str) -> None:
    """The staging task ran out of retries (ToDesktop or the bucket never recovered).

    The release request fails visibly (a release manager retries it from the admin). The build
    fails too unless another release's run is staging it right now (that run owns the build's
    state): a `staging` build whose lease went stale, or that this release's own (ended) run
    held, has nobody staging it (see `lifecycle.build_claim`).
    """
    release = ReleaseRequest.objects.select_related("build").filter(pk=release_id).first()
    if release is None or release.state != ReleaseState.PENDING:
        return
    reason = f"staging gave up after retries: {reason}"
    moved = lifecycle.move(
        release=release,
        step="fail_staging",
        build_step="give_up",
        reason=reason,
        event=Event(kind="staging.failed", message=reason),
    )
    if moved:
        logger.error("staging of %s gave up: %s", release.build.build_id, reason)
