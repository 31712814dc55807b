"""The one boundary to GitHub (docs/architecture.md): the only module that imports PyGithub.

Everything else calls the small functions below and gets plain dataclasses back, so retries,
timeouts, authentication and the test fake have one place.

- Authentication: `GITHUB_TOKEN`, or a GitHub App installation (`GITHUB_APP_ID`,
  `GITHUB_APP_PRIVATE_KEY`, `GITHUB_APP_INSTALLATION_ID`); PyGithub exchanges the app's JWT for
  an installation token and renews it before it expires.
- `GITHUB_API_URL` selects GitHub Enterprise Server (`https://ghe.example.com/api/v3`).
- Retries: PyGithub's `GithubRetry` (urllib3) retries 5xx and rate limits — a secondary limit
  after `Retry-After` (or 60 s without it), a primary limit after `X-RateLimit-Reset` — at most
  `GITHUB_MAX_RETRIES` times with exponential backoff, and waits no longer than
  `GITHUB_MAX_RATE_LIMIT_WAIT_SECONDS` for a limit to lift. After that the last response is
  turned into a `GitHubError` carrying GitHub's own message.
- Writes are spaced by `GITHUB_SECONDS_BETWEEN_WRITES`, as GitHub's best practices ask, to stay
  clear of secondary rate limits.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ParamSpec, TypeVar

import requests
from django.conf import settings
from github import Auth, Github, GithubException, GithubRetry
from github.PullRequest import PullRequest

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class GitHubError(Exception):
    """A GitHub call failed after the retries. `str()` is GitHub's message, prefixed with the
    HTTP status, e.g. `GitHub 401: Bad credentials`."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class FileConflict(GitHubError):
    """409: the file changed on the branch since it was read (its blob sha is stale)."""


@dataclass(frozen=True)
class RepoInfo:
    full_name: str
    default_branch: str
    html_url: str


@dataclass(frozen=True)
class RepoFile:
    path: str
    text: str
    sha: str  # the blob sha, needed to update the file


@dataclass(frozen=True)
class PullInfo:
    number: int
    url: str  # the html URL a person opens
    title: str
    body: str
    state: str  # open | closed
    merged: bool
    head_ref: str
    head_sha: str
    base_ref: str
    merged_by: str = ""  # login of whoever merged it
    merged_at: datetime | None = None


@dataclass(frozen=True)
class ReviewInfo:
    user: str  # login of the reviewer
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    commit_id: str  # the head commit the review was given on
    submitted_at: datetime | None = None


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.data or "no message").strip()
    details = [
        e.get("message") or e.get("code", "")
        for e in data.get("errors") or []
        if isinstance(e, dict)
    ]
    if details:
        message = f"{message}: {'; '.join(d for d in details if d)}"
    return f"GitHub {exc.status}: {message}"


def _translated(func: Callable[P, R]) -> Callable[P, R]:
    """Turn PyGithub's and requests' exceptions into `GitHubError`."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except GithubException as exc:
            cls = FileConflict if exc.status == 409 else GitHubError
            raise cls(_message(exc), status=exc.status) from exc
        except requests.RequestException as exc:
            raise GitHubError(f"cannot reach GitHub at {settings.GITHUB_API_URL}: {exc}") from exc

    return wrapper


def _auth() -> Auth.Auth:
    if settings.GITHUB_TOKEN:
        return Auth.Token(settings.GITHUB_TOKEN)
    if settings.GITHUB_APP_ID and settings.GITHUB_APP_PRIVATE_KEY:
        app = Auth.AppAuth(settings.GITHUB_APP_ID, settings.GITHUB_APP_PRIVATE_KEY)
        return app.get_installation_auth(int(settings.GITHUB_APP_INSTALLATION_ID))
    raise GitHubError("GitHub is not configured: set GITHUB_TOKEN or the GITHUB_APP_* settings")


def _config() -> tuple:
    return (
        settings.GITHUB_API_URL,
        settings.GITHUB_OWNER,
        settings.GITHUB_REPO,
        settings.GITHUB_TOKEN,
        settings.GITHUB_APP_ID,
        settings.GITHUB_APP_PRIVATE_KEY,
        settings.GITHUB_APP_INSTALLATION_ID,
        settings.GITHUB_MAX_RETRIES,
        settings.GITHUB_MAX_RATE_LIMIT_WAIT_SECONDS,
        settings.GITHUB_SECONDS_BETWEEN_WRITES,
        settings.HTTP_TIMEOUT_SECONDS,
    )


@functools.lru_cache(maxsize=4)
def _client(config: tuple) -> Github:
    # Keyed by the settings, so a worker reuses one client (and one installation token) while
    # tests that change settings get a fresh one.
    retry = GithubRetry(
        total=settings.GITHUB_MAX_RETRIES,
        backoff_factor=1.0,
        max_rate_limit_wait=settings.GITHUB_MAX_RATE_LIMIT_WAIT_SECONDS,
        # Give the last response back instead of urllib3's MaxRetryError, so the error we
        # record is GitHub's own message.
        raise_on_status=False,
    )
    return Github(
        base_url=settings.GITHUB_API_URL,
        auth=_auth(),
        retry=retry,
        timeout=int(settings.HTTP_TIMEOUT_SECONDS),
        seconds_between_requests=None,
        seconds_between_writes=settings.GITHUB_SECONDS_BETWEEN_WRITES or None,
        user_agent="selfhosted-desktop-releases",
        lazy=True,
    )


def clients_reset() -> None:
    """Forget the clients built so far, and their installation tokens."""
    _client.cache_clear()


def _repo():
    return _client(_config()).get_repo(f"{settings.GITHUB_OWNER}/{settings.GITHUB_REPO}")


def _pull_info(pull: PullRequest) -> PullInfo:
    return PullInfo(
        number=pull.number,
        url=pull.html_url,
        title=pull.title,
        body=pull.body or "",
        state=pull.state,
        merged=bool(pull.merged),
        head_ref=pull.head.ref,
        head_sha=pull.head.sha,
        base_ref=pull.base.ref,
        merged_by=pull.merged_by.login if pull.merged and pull.merged_by else "",
        merged_at=pull.merged_at,
    )


@_translated
def repo_get() -> RepoInfo:
    """The configured repository (its default branch is where releases are merged)."""
    repo = _repo()
    return RepoInfo(repo.full_name, repo.default_branch, repo.html_url)


@_translated
def branch_head(branch: str) -> str | None:
    """The commit sha `branch` points at, or None when there is no such branch."""
    try:
        return _repo().get_git_ref(f"heads/{branch}").object.sha
    except GithubException as exc:
        if exc.status == 404:
            return None
        raise


@_translated
def branch_create(branch: str, *, sha: str) -> bool:
    """Create `branch` at commit `sha`. False when a branch of that name exists (GitHub: 422
    "Reference already exists")."""
    try:
        _repo().create_git_ref(f"refs/heads/{branch}", sha)
        return True
    except GithubException as exc:
        if exc.status == 422 and "already exists" in _message(exc):
            return False
        raise


@_translated
def file_read(path: str, *, ref: str) -> RepoFile | None:
    """The text of `path` at `ref` (a branch or commit sha), or None when it does not exist."""
    try:
        content = _repo().get_contents(path, ref=ref)
    except GithubException as exc:
        if exc.status == 404:
            return None
        raise
    if isinstance(content, list):  # a directory
        return None
    return RepoFile(path, content.decoded_content.decode("utf-8", errors="replace"), content.sha)


@_translated
def file_write(path: str, *, text: str, message: str, branch: str, sha: str | None) -> str:
    """Commit `text` as `path` on `branch`; `sha` is the blob being replaced (None: a new file).
    Returns the new commit's sha. Raises `FileConflict` when `sha` is stale."""
    repo = _repo()
    if sha is None:
        result = repo.create_file(path, message, text, branch=branch)
    else:
        result = repo.update_file(path, message, text, sha, branch=branch)
    return result["commit"].sha


@_translated
def pull_find_by_branch(branch: str, *, state: str = "open") -> PullInfo | None:
    """The newest pull request from `branch` of this repository (state open, closed or all)."""
    head = f"{settings.GITHUB_OWNER}:{branch}"
    for pull in _repo().get_pulls(state=state, head=head):
        return _pull_info(pull)
    return None


@_translated
def pull_get(number: int) -> PullInfo:
    return _pull_info(_repo().get_pull(number))


@_translated
def pull_open(*, title: str, body: str, head: str, base: str) -> PullInfo:
    """Open a pull request from `head` into `base`, or return the open one GitHub already has
    for that branch (a retried request must never open a second PR)."""
    try:
        return _pull_info(_repo().create_pull(base=base, head=head, title=title, body=body))
    except GithubException as exc:
        if exc.status == 422 and "already exists" in _message(exc):
            existing = pull_find_by_branch(head)
            if existing is not None:
                return existing
        raise


@_translated
def pull_reviews(number: int) -> list[ReviewInfo]:
    """Every review of pull request `number`, oldest first (GitHub's order), with the commit
    each was given on: what "approved" covers is that commit, not whatever the branch became."""
    return [
        ReviewInfo(
            user=review.user.login if review.user else "",
            state=str(review.state or "").upper(),
            commit_id=review.commit_id or "",
            submitted_at=review.submitted_at,
        )
        for review in _repo().get_pull(number).get_reviews()
    ]
