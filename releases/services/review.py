"""Opening the review of a staged build (SPEC §6).

`review_open` is the single entry point staging calls once a build is staged and verified.

GitHub backend: the pull request is created exactly once, whatever crashes or retries (see
`pull_requests`); a rollback (`rollback_open`) opens its pull request through the same code.

A GitHub failure after PyGithub's retries leaves the release request `failed` with GitHub's
message, an audit event, and the message in the build's `failure_reason`. The build keeps
status `staged`: its files are fine, and staging treats a `failed` build as final, which would
block the retry and any re-release. A release manager retries from the admin (`review_retry`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from functools import partial

from django.conf import settings
from django.db import connection, transaction

from releases import github
from releases.models import ReleaseRequest, ReleaseState
from releases.queue import enqueue_after_commit
from releases.services import lifecycle, release_files
from releases.services.audit import audit_record
from releases.services.lifecycle import FILES_STAGED, Event
from releases.services.pr_body import pr_body, pr_title
from releases.services.pull_requests import FileChange, PullSpec, pull_ensure

logger = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x5E1F  # pg advisory locks: (namespace, release id)


def review_open(*, release: ReleaseRequest) -> None:
    """Open the review for `release` with the configured backend (idempotent)."""
    if not lifecycle.allows(release, "open_review"):
        return
    build = release.build
    if settings.REVIEW_BACKEND == "admin":
        lifecycle.move(
            release=release,
            step="open_review",
            build_step="open_review",
            event=Event(
                kind="review.awaiting_approval",
                message=f"waiting for {settings.REQUIRED_APPROVALS} approval(s) in the admin",
            ),
        )
        return
    if build.status not in FILES_STAGED:
        logger.warning("review of %s not opened: build is %s", release, build.status)
        return
    with _exclusive(release.pk) as acquired:
        if not acquired:  # another worker is opening this very review right now
            return
        release.refresh_from_db()
        if lifecycle.allows(release, "open_review"):
            _github_open(release)


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


@contextlib.contextmanager
def _exclusive(release_id: int) -> Iterator[bool]:
    """One run per release at a time, across workers: a PostgreSQL session advisory lock (freed
    when a dead worker's connection closes). SQLite (single machine) serialises writes anyway."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, release_id])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, release_id])


def _github_open(release: ReleaseRequest) -> None:
    spec = _spec(release)
    try:
        pull, created = pull_ensure(release, spec)
    except github.GitHubError as exc:
        _failed(release, spec, str(exc))
        return
    lifecycle.move(
        release=release,
        step="open_review",
        build_step="open_review",
        fields={"pr_number": pull.number, "pr_url": pull.url},
        event=spec.opened(pull, created),
    )
    release.refresh_from_db()


def _failed(release: ReleaseRequest, spec: PullSpec, message: str) -> None:
    logger.warning("review of %s failed: %s", release, message)
    with transaction.atomic():
        reason = spec.failure_reason(message)
        lifecycle.move(
            release=release, step="fail_review", reason=reason, event=spec.failed(message)
        )
        # The build's files stay usable (it stays `staged`), but it names the reason too.
        lifecycle.move(
            build=release.build, build_step="review_failed", reason=f"review failed: {reason}"
        )
    release.refresh_from_db()


def _spec(release: ReleaseRequest) -> PullSpec:
    if release.kind == "rollback":
        from releases.services.rollback import rollback_pull_spec

        return rollback_pull_spec(release)
    if release.kind == "halt":
        from releases.services.rollouts import halt_pull_spec

        return halt_pull_spec(release)
    build = release.build
    version = build.version or str(release.payload.get("appVersion") or "")
    entry = release_files.build_entry(
        build_id=build.build_id, version=version, created_at=release.created_at
    )
    changes = [
        FileChange(
            release_files.BUILDS_FILE,
            partial(release_files.builds_update, entry=entry),
            f"Add build {build.build_id} (v{version}) to {release_files.BUILDS_FILE}",
        )
    ]
    if release.release_info:
        changes.append(
            FileChange(
                release_files.RELEASES_FILE,
                partial(release_files.releases_update, release_info=release.release_info),
                f"Release v{version} in {release_files.RELEASES_FILE}",
            )
        )
    return PullSpec(
        stem=f"release-build-{build.build_id}",
        title=pr_title(release=release),
        changes=tuple(changes),
        body=lambda problems, base: pr_body(
            release=release, files=build.files.all(), problems=problems, base=base
        ),
        opened=lambda pull, created: Event(
            kind="review.pr_opened" if created else "review.pr_found",
            message=(
                f"opened pull request #{pull.number} from {pull.head_ref}"
                if created
                else f"found pull request #{pull.number} opened by an earlier attempt"
            ),
            url=pull.url,
            data={"number": pull.number, "branch": pull.head_ref, "base": pull.base_ref},
        ),
        failed=lambda message: Event(
            kind="review.failed",
            message=f"could not open the pull request: {message}",
            data={"branch": release.branch},
        ),
    )
