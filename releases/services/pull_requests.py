"""Opening a review's pull request exactly once, whatever crashes or retries (review, rollback).

1. The branch name is stored on the release request *before* the branch is created, so a retry
   after a crash continues on the same branch.
2. Before anything is committed, the open PR for that branch is looked up: a retry after a crash
   between "PR created" and "PR number saved" finds it instead of opening another (and GitHub
   itself refuses a second open PR for one branch; `github.pull_open` then returns the existing
   one).
3. Each file is re-read from the branch and committed only when it differs, so a retry adds no
   commits; a 409 (the branch moved under us) reads it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from releases.integrations import github
from releases.models import ReleaseRequest
from releases.services.lifecycle import Event

BRANCH_ATTEMPTS = 100
FILE_ATTEMPTS = 3


@dataclass(frozen=True)
class FileChange:
    path: str
    update: Callable[[str | None], Any]  # current text → an object with `.text` and `.problem`
    message: str  # the commit message


@dataclass(frozen=True)
class PullSpec:
    """What one kind of review commits and says, and how its outcome is recorded."""

    stem: str  # the branch name, or its stem when taken (`-1`, `-2`, …)
    title: str
    changes: tuple[FileChange, ...]
    body: Callable[[dict[str, str], str], str]  # (problem per path, base branch) → PR body
    opened: Callable[[github.PullInfo, bool], Event]  # (pull, created now) → its event
    failed: Callable[[str], Event]  # GitHub's message → its event
    failure_reason: Callable[[str], str] = str


def pull_ensure(release: ReleaseRequest, spec: PullSpec) -> tuple[github.PullInfo, bool]:
    """The PR of `release`: found (after a crash) or created. True when created now."""
    base = github.repo_get().default_branch
    base_sha = github.branch_head(base)
    if base_sha is None:
        raise github.GitHubError(f"the default branch {base} does not exist")
    branch = _branch_ensure(release, stem=spec.stem, base_sha=base_sha)
    existing = github.pull_find_by_branch(branch)
    if existing is not None:
        return existing, False
    problems = {}
    for change in spec.changes:
        on_base = github.file_read(change.path, ref=base)
        problems[change.path] = change.update(on_base.text if on_base else None).problem
        _file_commit(change, branch=branch)
    body = spec.body(problems, base)
    return github.pull_open(title=spec.title, body=body, head=branch, base=base), True


def _branch_claim(release: ReleaseRequest, name: str) -> None:
    ReleaseRequest.objects.filter(pk=release.pk).update(branch=name, updated_at=timezone.now())
    release.branch = name


def _branch_ensure(release: ReleaseRequest, *, stem: str, base_sha: str) -> str:
    """`stem` from the default branch head, or `stem-1`, `stem-2`, … when taken."""
    if release.branch:
        # Claimed by an earlier attempt of this release: it is ours whether or not that attempt
        # got as far as creating it.
        if github.branch_head(release.branch) or github.branch_create(release.branch, sha=base_sha):
            return release.branch
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


def _file_commit(change: FileChange, *, branch: str) -> None:
    """Apply the change to the file on `branch`; no commit when it already has that content."""
    for _attempt in range(FILE_ATTEMPTS):
        current = github.file_read(change.path, ref=branch)
        text = change.update(current.text if current else None).text
        if current is not None and current.text == text:
            return
        try:
            github.file_write(
                change.path,
                text=text,
                message=change.message,
                branch=branch,
                sha=current.sha if current else None,
            )
            return
        except github.FileConflict:
            continue  # the branch moved under us: read it again
    raise github.GitHubError(
        f"{change.path} kept changing on {branch}; gave up after {FILE_ATTEMPTS} attempts"
    )
