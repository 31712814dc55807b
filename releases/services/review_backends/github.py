"""The GitHub review backend: a pull request per release, rollback and halt (docs/review.md).

The pull request is created exactly once, whatever crashes or retries (see `pull_requests`);
a rollback and a halt open theirs through the same code, each with its own `PullSpec`.

A GitHub failure after PyGithub's retries leaves the release request `failed` with GitHub's
message, an audit event, and the message in the build's `failure_reason`. The build keeps
status `staged`: its files are fine, and staging treats a `failed` build as final, which would
block the retry and any re-release. A release manager retries from the admin (`review_retry`).

The desired production state is the default branch's two control files, read through the API
— never from a webhook body, which anyone holding the webhook secret could shape. A merge is
promoted only when the review covers it (`promotion.reviewed`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from functools import partial

from django.db import connection, transaction

from releases.control_files import BUILDS_FILE, RELEASES_FILE, control_bytes
from releases.integrations import github
from releases.locks import advisory_try_lock, advisory_unlock
from releases.models import Build, ReleaseRequest, ReleaseState, RolloutHalt
from releases.services import lifecycle, release_files
from releases.services.lifecycle import FILES_STAGED, Event
from releases.services.pr_body import pr_body, pr_title
from releases.services.promotion.desired import (
    DesiredState,
    DesiredStateError,
)
from releases.services.promotion.plan import Gate
from releases.services.promotion.reviewed import merge_gate
from releases.services.pull_requests import FileChange, PullSpec, pull_ensure
from releases.services.review import review_open
from releases.services.review_backends import ReviewBackend
from releases.services.rollback import rollback_pull_spec
from releases.services.rollouts import HaltRefused, halt_pull_spec

logger = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x5E1F  # pg advisory locks: (namespace, release id)


class GitHubReview(ReviewBackend):
    name = "github"
    label = "GitHub"

    def release_open(self, release: ReleaseRequest) -> None:
        build = release.build
        if build.status not in FILES_STAGED:
            logger.warning("review of %s not opened: build is %s", release, build.status)
            return
        with _exclusive(release.pk) as acquired:
            if not acquired:  # another worker is opening this very review right now
                return
            release.refresh_from_db()
            if lifecycle.allows(release, "open_review"):
                _pull_open(release)

    def rollback_open(self, release: ReleaseRequest, *, actor: str) -> None:
        # The review's own crash-safe code: the branch is stored before it is created, an
        # existing PR is found, a moved branch is read again. "Retry opening the review" in the
        # admin takes it up again after a failure.
        review_open(release=release)

    def halt_open(self, halt: RolloutHalt, build: Build, *, data_now: dict) -> ReleaseRequest:
        """The halt's pull request, opened by the same crash-safe code (`halt_pull_spec`)."""
        release = ReleaseRequest.objects.create(
            build=build,
            kind="halt",
            payload={"haltedBy": halt.actor, "reason": halt.reason, "halt": halt.pk},
        )
        review_open(release=release)
        release.refresh_from_db()
        if release.state == ReleaseState.FAILED:
            raise HaltRefused(release.failure_reason)
        return release

    def desired_state(self, *, production) -> DesiredState:
        try:
            branch = github.repo_get().default_branch
            # Both files from one commit: a push between the two reads cannot mix two states.
            sha = github.branch_head(branch)
            if sha is None:
                raise DesiredStateError(f"the default branch {branch} does not exist")
            builds = github.file_read(BUILDS_FILE, ref=sha)
            releases = github.file_read(RELEASES_FILE, ref=sha)
        except github.GitHubError as exc:
            raise DesiredStateError(f"cannot read the default branch: {exc}") from exc
        return DesiredState(
            builds_json=builds.text.encode() if builds else control_bytes([]),
            releases_json=releases.text.encode() if releases else None,
            source=f"default branch {branch} at {sha[:12]}",
        )

    def review_gate(self, *, new_build_ids: list[str]) -> Gate:
        return merge_gate(new_build_ids=new_build_ids)


@contextlib.contextmanager
def _exclusive(release_id: int) -> Iterator[bool]:
    """One run per release at a time, across workers: a PostgreSQL session advisory lock (freed
    when a dead worker's connection closes). SQLite (single machine) serialises writes anyway."""
    if connection.vendor != "postgresql":
        yield True
        return
    acquired = advisory_try_lock(LOCK_NAMESPACE, release_id)
    try:
        yield acquired
    finally:
        if acquired:
            advisory_unlock(LOCK_NAMESPACE, release_id)


def _pull_open(release: ReleaseRequest) -> None:
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
        return rollback_pull_spec(release)
    if release.kind == "halt":
        return halt_pull_spec(release)
    return _release_spec(release)


def _release_spec(release: ReleaseRequest) -> PullSpec:
    build = release.build
    version = build.version or str(release.payload.get("appVersion") or "")
    entry = release_files.build_entry(
        build_id=build.build_id, version=version, created_at=release.created_at
    )
    changes = [
        FileChange(
            BUILDS_FILE,
            partial(release_files.builds_update, entry=entry),
            f"Add build {build.build_id} (v{version}) to {BUILDS_FILE}",
        )
    ]
    if release.release_info:
        changes.append(
            FileChange(
                RELEASES_FILE,
                partial(release_files.releases_update, release_info=release.release_info),
                f"Release v{version} in {RELEASES_FILE}",
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
