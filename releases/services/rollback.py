"""Rollback is a normal review (SPEC §7): point `latestReleaseBuildId` back at a live build.

GitHub backend: a branch `rollback-to-<buildId>` (`-1`, `-2`, … when taken) from the default
branch head, one commit to `desktop-releases.json`, and a PR. Merging it is promoted like any
other merge (the mirror matches the PR by number). Admin backend: a release request of kind
`rollback` waiting for the usual approvals. Either way nothing changes in production until the
review accepts it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from releases.models import Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services.audit import audit_record
from releases.services.pr_body import REVIEWED_HEAD_NOTE
from releases.services.release_files import RELEASES_FILE, releases_update

BRANCH_ATTEMPTS = 100
OPEN_ROLLBACK_STATES = (
    ReleaseState.PENDING,
    ReleaseState.AWAITING_REVIEW,
    ReleaseState.IN_REVIEW,
    ReleaseState.CHANGES_REQUESTED,
    ReleaseState.APPROVED,
)


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
            build=build, kind="rollback", state__in=OPEN_ROLLBACK_STATES
        ).first()
        if open_one is not None:
            where = open_one.pr_url or f"release request #{open_one.pk}"
            raise RollbackError(f"a rollback to {build.build_id} is already open: {where}")
        release = ReleaseRequest.objects.create(
            build=build,
            kind="rollback",
            payload={"rollbackTo": build.build_id, "requestedBy": actor},
            release_info={"latestReleaseBuildId": build.build_id},
            state=ReleaseState.PENDING,
            requested_by=actor,
        )
    if settings.REVIEW_BACKEND == "admin":
        ReleaseRequest.objects.filter(pk=release.pk).update(state=ReleaseState.IN_REVIEW)
        audit_record(
            kind="rollback.awaiting_approval",
            message=f"rollback to {build} requested by {actor}; waiting for approval",
            release=release,
            actor=actor,
        )
    else:
        _open_pull_request(release, actor=actor)
    release.refresh_from_db()
    return release


def _open_pull_request(release: ReleaseRequest, *, actor: str) -> None:
    from releases import github

    build = release.build
    try:
        base = github.repo_get().default_branch
        head = github.branch_head(base)
        branch = _branch_create(f"rollback-to-{build.build_id}", sha=head)
        ReleaseRequest.objects.filter(pk=release.pk).update(branch=branch)
        current = github.file_read(RELEASES_FILE, ref=head)
        updated = releases_update(current.text if current else None,
                                  release_info=release.release_info)  # fmt: skip
        github.file_write(
            RELEASES_FILE,
            text=updated.text,
            message=f"Roll back to build {build.build_id} (v{build.version})",
            branch=branch,
            sha=current.sha if current else None,
        )
        pull = github.pull_open(
            title=f"[rollback] Make build {build.build_id} (v{build.version}) the latest release",
            body=_body(build, actor=actor),
            head=branch,
            base=base,
        )
    except github.GitHubError as exc:
        message = f"cannot open the rollback pull request: {exc}"
        ReleaseRequest.objects.filter(pk=release.pk).update(
            state=ReleaseState.FAILED, failure_reason=message
        )
        audit_record(kind="rollback.failed", message=message, release=release, actor=actor)
        raise RollbackError(message) from exc
    ReleaseRequest.objects.filter(pk=release.pk).update(
        state=ReleaseState.IN_REVIEW, pr_number=pull.number, pr_url=pull.url
    )
    audit_record(
        kind="rollback.opened",
        message=f"rollback to {build} opened as pull request #{pull.number} by {actor}",
        release=release,
        actor=actor,
        url=pull.url,
    )


def _branch_create(name: str, *, sha: str) -> str:
    from releases import github

    for attempt in range(BRANCH_ATTEMPTS):
        candidate = name if attempt == 0 else f"{name}-{attempt}"
        if github.branch_create(candidate, sha=sha):
            return candidate
    raise github.GitHubError(f"no free branch name for {name} after {BRANCH_ATTEMPTS} tries")


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
