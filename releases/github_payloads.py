"""The shape of the GitHub webhook bodies we mirror (docs/webhooks.md): checked before anything is
stored.

A valid signature proves GitHub sent a body, not that every field has the type the mirror
relies on (a hand-made delivery signed with the secret, a GitHub Enterprise quirk). Only the
fields the mirror reads are checked, with their documented JSON types; everything else is
kept as sent. A body of the wrong shape is a 400 that stores nothing, never a 500.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from releases.validation import Timestamp

# `ReleaseRequest.pr_number` is a PostgreSQL integer; GitHub's numbers start at 1.
PullNumber = Annotated[int, Field(gt=0, le=2**31 - 1)]
Login = Annotated[str, Field(max_length=255)]


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class User(_Shape):
    login: Login | None = None


class Repository(_Shape):
    full_name: str | None = None
    default_branch: str | None = None
    master_branch: str | None = None


class Side(_Shape):
    ref: str | None = None
    repo: Repository | None = None  # null when the fork behind a pull request was deleted


class PullRequest(_Shape):
    number: PullNumber
    html_url: str | None = None
    merged: bool | None = None
    merged_by: User | None = None
    merged_at: Timestamp | None = None
    head: Side | None = None


class Review(_Shape):
    state: str | None = None
    user: User | None = None
    html_url: str | None = None
    body: str | None = None


class _Event(_Shape):
    repository: Repository | None = None
    sender: User | None = None


class PullRequestEvent(_Event):
    action: str = ""
    pull_request: PullRequest


class ReviewEvent(PullRequestEvent):
    review: Review


class Commit(_Shape):
    added: list[str] | None = None
    modified: list[str] | None = None
    removed: list[str] | None = None


class Pusher(_Shape):
    name: Login | None = None


class HeadCommit(_Shape):
    timestamp: str | None = None


class PushEvent(_Event):
    ref: str | None = None
    compare: str | None = None
    after: str | None = None
    commits: list[Commit] | None = None
    head_commit: HeadCommit | None = None
    pusher: Pusher | None = None


SHAPES: dict[str, type[_Shape]] = {
    "pull_request": PullRequestEvent,
    "pull_request_review": ReviewEvent,
    "push": PushEvent,
}


class GitHubPayloadError(ValueError):
    """A signed body whose shape the mirror cannot use; the message names the field."""


def github_payload_check(*, event: str, payload: dict[str, Any]) -> None:
    """Raise GitHubPayloadError when a field the mirror reads has the wrong type."""
    if event == "ping":
        return
    shape = SHAPES.get(event, _Event)
    try:
        shape.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        raise GitHubPayloadError(f"invalid {event} payload: {field}: {error['msg'][:80]}")
