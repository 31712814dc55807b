"""Rollback is a normal review (docs/review.md): point `latestReleaseBuildId` back at a live build.

GitHub backend: a branch `rollback-to-<buildId>` (`-1`, `-2`, … when taken) from the default
branch head, one commit to `desktop-releases.json`, and a PR. Merging it is promoted like any
other merge (the mirror matches the PR by number). Admin backend: a release request of kind
`rollback` waiting for the usual approvals. Either way nothing changes in production until the
review accepts it.
"""

from __future__ import annotations

from functools import partial

from django.conf import settings
from django.db import transaction

from releases.control_files import RELEASES_FILE
from releases.models import Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services.lifecycle import REVIEW_OPEN, Event
from releases.services.pr_body import REVIEWED_HEAD_NOTE
from releases.services.pull_requests import FileChange, PullSpec
from releases.services.release_files import releases_update
from releases.services.review_backends import review_backend


class RollbackError(Exception):
    """The rollback could not be opened; the message says why."""


def rollback_open(*, build: Build, actor: str) -> ReleaseRequest:
    """Open a review that makes `build` the latest release again."""
    if build.status != BuildStatus.LIVE:
        raise RollbackError(f"build {build.build_id} is not live; only a live build can be")
    with transaction.atomic():
        # The build's row lock serialises two managers clicking at once: the second one finds
        # the first one's rollback instead of opening another review.
        Build.objects.select_for_update().filter(pk=build.pk).first()
        open_one = ReleaseRequest.objects.filter(
            build=build, kind="rollback", state__in=REVIEW_OPEN
        ).first()
        if open_one is not None:
            where = open_one.pr_url or f"release request #{open_one.pk}"
            raise RollbackError(f"a rollback to {build.build_id} is already open: {where}")
        release = ReleaseRequest.objects.create(
            build=build,
            kind="rollback",
            payload={"rollbackTo": build.build_id, "requestedBy": actor},
            release_info={"latestReleaseBuildId": build.build_id},
            requested_by=actor,
        )
    review_backend().rollback_open(release, actor=actor)
    release.refresh_from_db()
    if release.state == ReleaseState.FAILED:
        raise RollbackError(release.failure_reason)
    return release


def rollback_pull_spec(release: ReleaseRequest) -> PullSpec:
    """The branch, commit and PR of a rollback (`review_open` opens it)."""
    build = release.build
    actor = str(release.payload.get("requestedBy") or "")
    return PullSpec(
        stem=f"rollback-to-{build.build_id}",
        title=f"[rollback] Make build {build.build_id} (v{build.version}) the latest release",
        changes=(
            FileChange(
                RELEASES_FILE,
                partial(releases_update, release_info=release.release_info),
                f"Roll back to build {build.build_id} (v{build.version})",
            ),
        ),
        body=lambda _problems, _base: _body(build, actor=actor),
        opened=lambda pull, created: Event(
            kind="rollback.opened",
            message=f"rollback to {build} opened as pull request #{pull.number} by {actor}"
            + ("" if created else " (found after an earlier attempt)"),
            actor=actor,
            url=pull.url,
        ),
        failed=lambda message: Event(
            kind="rollback.failed",
            message=f"cannot open the rollback pull request: {message}",
            actor=actor,
        ),
        failure_reason=lambda message: f"cannot open the rollback pull request: {message}",
    )


def _since(build: Build) -> str:
    return f", live since {build.live_at:%Y-%m-%d %H:%M} UTC" if build.live_at else ""


def _body(build: Build, *, actor: str) -> str:
    admin_url = settings.PUBLIC_BASE_URL + build.get_admin_url()
    return (
        f"Requested by **{actor}** from the admin.\n\n"
        f"Merging sets `latestReleaseBuildId` in `{RELEASES_FILE}` to `{build.build_id}` "
        f"(v{build.version}{_since(build)}). "
        "Its files are already in production; only that file is promoted.\n\n"
        + (f"{REVIEWED_HEAD_NOTE}\n\n" if settings.REQUIRE_REVIEWED_HEAD else "")
        + f"Build in the admin: {admin_url}\n"
    )
