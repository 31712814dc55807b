"""Shared pieces of the fake GitHub: constants, git object ids, records."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

DOCS = "https://docs.github.com/rest"
API_PREFIX = "/api/v3"


def blob_sha(data: bytes) -> str:
    """Git's blob id: what GitHub returns as a file's `sha`."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Commit:
    sha: str
    parent: str | None
    message: str
    tree: dict[str, bytes]
    date: str = field(default_factory=now)


@dataclass
class Fault:
    status: int
    method: str | None
    path: str | None  # a regular expression searched in the path (after /api/v3)
    remaining: int | None  # None: forever
    headers: dict[str, str]
    body: dict
    after: bool = False  # handle the request, then answer with the fault (a lost response)


@dataclass
class SeenRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str
    status: int
    at: float


class GitHubError(Exception):
    def __init__(self, status: int, message: str, errors: list | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


def encode_files(files: dict[str, str | bytes]) -> dict[str, bytes]:
    return {p: (c.encode() if isinstance(c, str) else c) for p, c in files.items()}
