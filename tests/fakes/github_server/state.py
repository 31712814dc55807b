"""The fake GitHub's git-like state and the test-facing API (see the package docstring)."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time

from tests.fakes.github_server.common import (
    API_PREFIX,
    DOCS,
    Commit,
    Fault,
    GitHubError,
    SeenRequest,
    encode_files,
    now,
)
from tests.fakes.github_server.shapes import Shapes


class FakeGitHub(Shapes):
    """The state and the test-facing API. `url` is what GITHUB_API_URL should be set to."""

    def __init__(self, host: str, port: int):
        self.web_url = f"http://{host}:{port}"
        self.url = f"{self.web_url}{API_PREFIX}"
        self.lock = threading.RLock()
        self.reset()

    # --- test API: set-up --------------------------------------------------------------------

    def reset(
        self,
        *,
        files: dict[str, str | bytes] | None = None,
        owner: str = "acme",
        repo: str = "desktop-releases",
        default_branch: str = "main",
        token: str = "ghp_testtoken",
    ) -> None:
        """A new repository with one commit on the default branch holding `files`."""
        with self.lock:
            self.owner, self.repo, self.default_branch = owner, repo, default_branch
            self.tokens: dict[str, float | None] = {token: None}  # token → expiry (epoch)
            self.apps: dict[int, tuple[str, int]] = {}  # installation → (app id, public key)
            self.commits: dict[str, Commit] = {}
            self.branches: dict[str, str] = {}
            self.forked_from: dict[str, str] = {}  # branch → commit it was created from
            self.pull_requests: list[dict] = []
            self.faults: list[Fault] = []
            self.requests: list[SeenRequest] = []
            self.latency = 0.0  # seconds each response takes (to make races overlap)
            self._ids = itertools.count(1000)
            root = self._commit(None, "Initial commit", encode_files(files or {"README.md": ""}))
            self.branches[default_branch] = root.sha

    def app_register(self, *, app_id: int, public_key_pem: str, installation_id: int) -> None:
        """Accept JWTs signed by this key for `app_id`, and issue tokens for the installation."""
        with self.lock:
            self.apps[installation_id] = (str(app_id), public_key_pem)

    def fail(
        self,
        status: int,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        message: str | None = None,
        after: bool = False,
    ) -> None:
        """The next `times` matching requests (None: all) get `status` and nothing changes —
        or, with `after=True`, the request takes effect and only its response is lost (a 502
        from a proxy after GitHub did the work)."""
        default = {502: "Server Error", 401: "Bad credentials"}.get(status, "Error")
        body = {"message": message or default, "documentation_url": DOCS, "status": str(status)}
        with self.lock:
            self.faults.append(Fault(status, method, path, times, headers or {}, body, after))

    def rate_limit(self, *, retry_after: int = 1, times: int = 1, path: str | None = None) -> None:
        """A secondary rate limit, as GitHub sends it: 403 with `Retry-After`."""
        self.fail(
            403,
            path=path,
            times=times,
            headers={"Retry-After": str(retry_after), "X-RateLimit-Remaining": "4999"},
            message="You have exceeded a secondary rate limit. Please wait a few minutes "
            "before you try again. If you reach out to GitHub Support for help, please "
            "include the request ID.",
        )

    def rate_limit_exhausted(self, *, reset_in: int = 1, times: int = 1) -> None:
        """The primary rate limit, as GitHub sends it: 403, `X-RateLimit-Remaining: 0` and the
        epoch second of the reset in `X-RateLimit-Reset` (no Retry-After)."""
        self.fail(
            403,
            times=times,
            headers={
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time()) + reset_in),
            },
            message="API rate limit exceeded for installation ID 77. If you reach out to "
            "GitHub Support for help, please include the request ID.",
        )

    def branch_create(
        self,
        name: str,
        *,
        files: dict[str, str | bytes | None] | None = None,
        source: str | None = None,
        message: str = "work in progress",
    ) -> str:
        """Create `name` from `source` (default branch); with `files`, commit them on top."""
        with self.lock:
            base = self.branches[source or self.default_branch]
            self.branches[name] = base
            self.forked_from[name] = base
            if files:
                self.commit(name, files, message)
            return self.branches[name]

    def commit(self, branch: str, files: dict[str, str | bytes | None], message: str) -> str:
        """A push to `branch`: set (or delete, with None) files; returns the new commit sha."""
        with self.lock:
            parent = self.commits[self.branches[branch]]
            tree = dict(parent.tree)
            for path, content in files.items():
                if content is None:
                    tree.pop(path, None)
                else:
                    tree[path] = content.encode() if isinstance(content, str) else content
            commit = self._commit(parent.sha, message, tree)
            self.branches[branch] = commit.sha
            return commit.sha

    # --- test API: inspection ----------------------------------------------------------------

    def files(self, branch: str | None = None) -> dict[str, str]:
        with self.lock:
            tree = self.commits[self.branches[branch or self.default_branch]].tree
            return {path: data.decode() for path, data in tree.items()}

    def file(self, path: str, branch: str | None = None) -> str | None:
        return self.files(branch).get(path)

    def history(self, branch: str) -> list[str]:
        """Commit messages on `branch`, newest first, down to where it left its source."""
        with self.lock:
            stop = self.forked_from.get(branch)
            messages, sha = [], self.branches[branch]
            while sha and sha != stop:
                messages.append(self.commits[sha].message)
                sha = self.commits[sha].parent
            return messages

    def pulls(self, state: str = "all") -> list[dict]:
        with self.lock:
            return [self._pull_json(p) for p in self.pull_requests if state in ("all", p["state"])]

    def pull(self, number: int) -> dict:
        with self.lock:
            return self._pull_json(self._pull(number))

    def merge(self, number: int, *, merged_by: str = "octocat") -> str:
        """Merge a PR into its base like GitHub's merge button: the base gets the head's changes
        (relative to where the head branch started) in a new commit. Returns its sha."""
        with self.lock:
            pr = self._pull(number)
            head, base = pr["head"], pr["base"]
            fork = self.commits[self.forked_from.get(head, self.branches[base])].tree
            head_tree = self.commits[self.branches[head]].tree
            changes: dict[str, bytes | None] = {
                path: data for path, data in head_tree.items() if fork.get(path) != data
            }
            changes.update({path: None for path in fork if path not in head_tree})
            sha = self.commit(base, changes, f"Merge pull request #{number} from {head}")
            pr.update(state="closed", merged=True, merged_by=merged_by, merge_commit_sha=sha)
            pr["merged_at"] = pr["closed_at"] = pr["updated_at"] = now()
            return sha

    def review(
        self,
        number: int,
        *,
        user: str = "ada",
        state: str = "APPROVED",
        commit_id: str | None = None,
        body: str = "",
    ) -> dict:
        """A submitted review of PR `number` on `commit_id` (default: the head right now), as a
        reviewer clicking "Submit review" would leave it. Returns the review's JSON."""
        with self.lock:
            pr = self._pull(number)
            review = {
                "id": next(self._ids),
                "user": user,
                "state": state,
                "body": body,
                "commit_id": commit_id or self.branches.get(pr["head"], pr.get("head_sha", "")),
                "submitted_at": now(),
            }
            pr.setdefault("reviews", []).append(review)
            return self._review_json(pr, review)

    def dismiss(self, number: int, review_id: int) -> None:
        """A dismissed review stays in the list with state DISMISSED (GitHub's behaviour)."""
        with self.lock:
            for review in self._pull(number).get("reviews", []):
                if review["id"] == review_id:
                    review["state"] = "DISMISSED"

    def close(self, number: int) -> None:
        with self.lock:
            pr = self._pull(number)
            pr.update(state="closed", closed_at=now(), updated_at=now())

    # --- state helpers ------------------------------------------------------------------------

    def _commit(self, parent: str | None, message: str, tree: dict[str, bytes]) -> Commit:
        seed = f"{parent}\0{message}\0{next(self._ids)}\0{sorted(tree.items())}".encode()
        commit = Commit(hashlib.sha1(seed).hexdigest(), parent, message, tree)
        self.commits[commit.sha] = commit
        return commit

    def _pull(self, number: int) -> dict:
        for pr in self.pull_requests:
            if pr["number"] == number:
                return pr
        raise GitHubError(404, "Not Found")

    def _resolve(self, ref: str | None) -> Commit:
        ref = ref or self.default_branch
        ref = ref.removeprefix("refs/heads/").removeprefix("heads/")
        sha = self.branches.get(ref) or (ref if ref in self.commits else None)
        if sha is None:
            raise GitHubError(404, f"No commit found for the ref {ref}")
        return self.commits[sha]

    # --- JSON shapes (https://docs.github.com/en/rest) -----------------------------------------
