"""Opening the review of a staged build (SPEC §6).

`review_open` is the single entry point staging calls once a build is staged and verified.

GitHub backend, created exactly once:
1. The branch name is stored on the release request *before* the branch is created, so a
   retry after a crash continues on the same branch.
2. Before anything is committed, the open PR for that branch is looked up: a retry after a
   crash between "PR created" and "PR number saved" finds it instead of opening another (and
   GitHub itself refuses a second open PR for one branch; `github.pull_open` then returns the
   existing one).
3. Each metadata file is re-read from the branch and committed only when it differs, so a retry
   adds no commits.

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
from django.utils import timezone

from releases import github
from releases.models import Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services import release_files
from releases.services.audit import audit_record
from releases.services.pr_body import pr_body, pr_title

logger = logging.getLogger(__name__)

OPENABLE = (ReleaseState.PENDING, ReleaseState.AWAITING_REVIEW, ReleaseState.FAILED)
# The build's files are staged and verified (staging sets `staged` only after verification).
READY = (BuildStatus.STAGED, BuildStatus.IN_REVIEW, BuildStatus.APPROVED, BuildStatus.LIVE)
BRANCH_ATTEMPTS = 100
LOCK_NAMESPACE = 0x5E1F  # pg advisory locks: (namespace, release id)


def review_open(*, release: ReleaseRequest) -> None:
    """Open the review for `release` with the configured backend (idempotent)."""
    if release.state not in OPENABLE:
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
    if build.status not in READY:
        logger.warning("review of %s not opened: build is %s", release, build.status)
        return
    with _exclusive(release.pk) as acquired:
        if not acquired:  # another worker is opening this very review right now
            return
        release.refresh_from_db()
        if release.state in OPENABLE:
            _github_open(release)


def review_blocker(*, release: ReleaseRequest) -> str:
    """Why the review of `release` cannot be retried now ("" when it can)."""
    if release.state not in (ReleaseState.FAILED, ReleaseState.AWAITING_REVIEW):
        return f"it is {release.get_state_display()}"
    if release.build.status not in READY:
        return f"its build is {release.build.get_status_display()}, not staged"
    return ""


def review_retry(*, releases: Iterable[ReleaseRequest], actor: str) -> tuple[int, list[str]]:
    """Queue `releases.tasks.review_open` for each release whose review can be retried.
    Returns how many were queued and why the others were not."""
    from releases.tasks import review_open as review_open_task

    queued, skipped = 0, []
    for release in releases:
        blocker = review_blocker(release=release)
        if blocker:
            skipped.append(f"#{release.pk} ({blocker})")
            continue
        audit_record(
            kind="review.retry", message="review retry requested", actor=actor, release=release
        )
        transaction.on_commit(partial(review_open_task.delay, release.pk))
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
    try:
        pull, created = _pull_ensure(release)
    except github.GitHubError as exc:
        _failed(release, str(exc))
        return
    now = timezone.now()
    with transaction.atomic():
        ReleaseRequest.objects.filter(pk=release.pk).update(
            pr_number=pull.number,
            pr_url=pull.url,
            state=ReleaseState.IN_REVIEW,
            failure_reason="",
            updated_at=now,
        )
        Build.objects.filter(pk=release.build_id, status__in=(BuildStatus.STAGED,)).update(
            status=BuildStatus.IN_REVIEW, failure_reason="", updated_at=now
        )
        audit_record(
            kind="review.pr_opened" if created else "review.pr_found",
            message=(
                f"opened pull request #{pull.number} from {pull.head_ref}"
                if created
                else f"found pull request #{pull.number} opened by an earlier attempt"
            ),
            url=pull.url,
            release=release,
            data={"number": pull.number, "branch": pull.head_ref, "base": pull.base_ref},
        )
    release.refresh_from_db()


def _failed(release: ReleaseRequest, message: str) -> None:
    logger.warning("review of %s failed: %s", release, message)
    now = timezone.now()
    ReleaseRequest.objects.filter(pk=release.pk).update(
        state=ReleaseState.FAILED, failure_reason=message, updated_at=now
    )
    Build.objects.filter(pk=release.build_id, status=BuildStatus.STAGED).update(
        failure_reason=f"review failed: {message}", updated_at=now
    )
    audit_record(
        kind="review.failed",
        message=f"could not open the pull request: {message}",
        release=release,
        data={"branch": release.branch},
    )
    release.refresh_from_db()


def _pull_ensure(release: ReleaseRequest) -> tuple[github.PullInfo, bool]:
    """The PR of `release`: found (after a crash) or created. True when created now."""
    base = github.repo_get().default_branch
    base_sha = github.branch_head(base)
    if base_sha is None:
        raise github.GitHubError(f"the default branch {base} does not exist")
    branch = _branch_ensure(release, base_sha=base_sha)
    existing = github.pull_find_by_branch(branch)
    if existing is not None:
        return existing, False
    problems = _files_commit(release, branch=branch, base=base)
    body = pr_body(release=release, files=release.build.files.all(), problems=problems, base=base)
    pull = github.pull_open(title=pr_title(release=release), body=body, head=branch, base=base)
    return pull, True


def _branch_claim(release: ReleaseRequest, name: str) -> None:
    ReleaseRequest.objects.filter(pk=release.pk).update(branch=name, updated_at=timezone.now())
    release.branch = name


def _branch_ensure(release: ReleaseRequest, *, base_sha: str) -> str:
    """`release-build-<id>` from the default branch head, or `-1`, `-2`, … when taken."""
    if release.branch:
        # Claimed by an earlier attempt of this release: it is ours whether or not that attempt
        # got as far as creating it.
        if github.branch_head(release.branch) or github.branch_create(release.branch, sha=base_sha):
            return release.branch
    stem = f"release-build-{release.build.build_id}"
    claimed = set(
        ReleaseRequest.objects.exclude(pk=release.pk)
        .filter(branch__startswith=stem)
        .values_list("branch", flat=True)
    )
    for number in range(BRANCH_ATTEMPTS):
        name = f"{stem}-{number}" if number else stem
        if name in claimed:
            continue
        _branch_claim(release, name)
        if github.branch_create(name, sha=base_sha):
            return name
        # GitHub says it exists. A retried POST whose first response was lost (a 502 after
        # GitHub had created it) leaves a bare branch at our base and no PR: that one is ours.
        if github.branch_head(name) == base_sha and not github.pull_find_by_branch(
            name, state="all"
        ):
            return name
    raise github.GitHubError(
        f"no free branch name: {stem} … {stem}-{BRANCH_ATTEMPTS - 1} are taken"
    )


def _files_commit(release: ReleaseRequest, *, branch: str, base: str) -> dict[str, str]:
    """Commit desktop-builds.json (and desktop-releases.json with releaseInfo) on `branch`.
    Returns, per file, why its content on `base` was not used ("" when it was)."""
    build = release.build
    version = build.version or str(release.payload.get("appVersion") or "")
    entry = release_files.build_entry(
        build_id=build.build_id, version=version, created_at=release.created_at
    )
    changes = [
        (
            release_files.BUILDS_FILE,
            partial(release_files.builds_update, entry=entry),
            f"Add build {build.build_id} (v{version}) to {release_files.BUILDS_FILE}",
        )
    ]
    if release.release_info:
        changes.append(
            (
                release_files.RELEASES_FILE,
                partial(release_files.releases_update, release_info=release.release_info),
                f"Release v{version} in {release_files.RELEASES_FILE}",
            )
        )
    problems = {}
    for path, update, message in changes:
        on_base = github.file_read(path, ref=base)
        problems[path] = update(on_base.text if on_base else None).problem
        _file_commit(path, update=update, message=message, branch=branch)
    return problems


def _file_commit(path: str, *, update, message: str, branch: str) -> None:
    """Apply `update` to the file on `branch`; no commit when it already has that content."""
    for _attempt in range(3):
        current = github.file_read(path, ref=branch)
        text = update(current.text if current else None).text
        if current is not None and current.text == text:
            return
        try:
            github.file_write(
                path,
                text=text,
                message=message,
                branch=branch,
                sha=current.sha if current else None,
            )
            return
        except github.FileConflict:
            continue  # the branch moved under us: read it again
    raise github.GitHubError(f"{path} kept changing on {branch}; gave up after 3 attempts")
