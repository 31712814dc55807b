"""A fake GitHub REST API on loopback, for the tests (SPEC §6).

A real HTTP server (ThreadingHTTPServer in a thread) that speaks the part of GitHub's REST API
that `releases.github` uses through PyGithub, with GitHub's documented response shapes, status
codes and error bodies (https://docs.github.com/en/rest): the repository, git refs, contents
get/put (base64 + blob sha), pulls list/create/get, and installation access tokens for GitHub App
authentication. It is served under `/api/v3`, like GitHub Enterprise Server, so
`GITHUB_API_URL` is exercised too.

State is git-like: commits hold a full tree (path → bytes) and a parent; branches point at
commits; pull requests point at branches. Tests drive and inspect it in plain Python:

    gh = start_github_server()
    gh.reset(files={"desktop-builds.json": "[]"})     # a fresh repository
    gh.files("main")                                   # {path: text} on a branch
    gh.branch_create("release-build-x", files={...})   # a branch with one commit on top
    gh.pulls()                                         # GitHub-shaped PR dicts
    gh.merge(1, merged_by="octocat")                   # merge a PR into its base
    gh.fail(502)                                       # the next request gets a 502
    gh.rate_limit(retry_after=1)                       # the next request: 403 secondary limit
    gh.requests                                        # every request seen (method, path, …)
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

DOCS = "https://docs.github.com/rest"
API_PREFIX = "/api/v3"


def blob_sha(data: bytes) -> str:
    """Git's blob id: what GitHub returns as a file's `sha`."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Commit:
    sha: str
    parent: str | None
    message: str
    tree: dict[str, bytes]
    date: str = field(default_factory=_now)


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


class FakeGitHub:
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
            root = self._commit(None, "Initial commit", _encode_files(files or {"README.md": ""}))
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
            pr["merged_at"] = pr["closed_at"] = pr["updated_at"] = _now()
            return sha

    def close(self, number: int) -> None:
        with self.lock:
            pr = self._pull(number)
            pr.update(state="closed", closed_at=_now(), updated_at=_now())

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

    @property
    def repo_api(self) -> str:
        return f"{self.url}/repos/{self.owner}/{self.repo}"

    @property
    def repo_html(self) -> str:
        return f"{self.web_url}/{self.owner}/{self.repo}"

    def _user_json(self, login: str) -> dict:
        return {
            "login": login,
            "id": abs(hash(login)) % 10_000_000,
            "node_id": "MDQ6VXNlcjE=",
            "type": "Bot" if login.endswith("[bot]") else "User",
            "site_admin": False,
            "url": f"{self.url}/users/{login}",
            "html_url": f"{self.web_url}/{login}",
            "avatar_url": f"{self.web_url}/avatars/{login}",
        }

    def _repo_json(self) -> dict:
        return {
            "id": 123456,
            "node_id": "R_kgDOtest",
            "name": self.repo,
            "full_name": f"{self.owner}/{self.repo}",
            "owner": self._user_json(self.owner),
            "private": True,
            "visibility": "private",
            "fork": False,
            "archived": False,
            "description": "Release metadata",
            "default_branch": self.default_branch,
            "url": self.repo_api,
            "html_url": self.repo_html,
            "git_refs_url": f"{self.repo_api}/git/refs{{/sha}}",
            "contents_url": f"{self.repo_api}/contents/{{+path}}",
            "pulls_url": f"{self.repo_api}/pulls{{/number}}",
            "created_at": "2025-01-01T00:00:00Z",
            "updated_at": _now(),
            "pushed_at": _now(),
            "permissions": {"admin": False, "push": True, "pull": True},
        }

    def _ref_json(self, name: str) -> dict:
        sha = self.branches[name]
        return {
            "ref": f"refs/heads/{name}",
            "node_id": "REF_test",
            "url": f"{self.repo_api}/git/refs/heads/{name}",
            "object": {"type": "commit", "sha": sha, "url": f"{self.repo_api}/git/commits/{sha}"},
        }

    def _content_json(self, path: str, data: bytes | None, ref: str, *, with_content=True) -> dict:
        sha = blob_sha(data or b"")
        html = f"{self.repo_html}/blob/{ref}/{path}"
        entry = {
            "type": "file",
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": len(data or b""),
            "url": f"{self.repo_api}/contents/{path}?ref={ref}",
            "git_url": f"{self.repo_api}/git/blobs/{sha}",
            "html_url": html,
            "download_url": f"{self.web_url}/raw/{self.owner}/{self.repo}/{ref}/{path}",
            "_links": {"self": f"{self.repo_api}/contents/{path}?ref={ref}", "html": html},
        }
        if with_content:
            # GitHub wraps the base64 at 60 characters per line.
            encoded = base64.b64encode(data or b"").decode()
            entry["content"] = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
            entry["encoding"] = "base64"
        return entry

    def _commit_json(self, commit: Commit) -> dict:
        person = {"name": "release-bot", "email": "bot@example.com", "date": commit.date}
        parents = [commit.parent] if commit.parent else []
        return {
            "sha": commit.sha,
            "node_id": "C_test",
            "url": f"{self.repo_api}/git/commits/{commit.sha}",
            "html_url": f"{self.repo_html}/commit/{commit.sha}",
            "author": person,
            "committer": person,
            "message": commit.message,
            "tree": {"sha": hashlib.sha1(commit.sha.encode()).hexdigest(), "url": ""},
            "parents": [
                {"sha": p, "url": f"{self.repo_api}/git/commits/{p}", "html_url": ""}
                for p in parents
            ],
            "verification": {"verified": False, "reason": "unsigned", "signature": None},
        }

    def _branch_side(self, name: str, sha: str) -> dict:
        return {
            "label": f"{self.owner}:{name}",
            "ref": name,
            "sha": sha,
            "user": self._user_json(self.owner),
            "repo": self._repo_json(),
        }

    def _pull_json(self, pr: dict) -> dict:
        number = pr["number"]
        api, html = f"{self.repo_api}/pulls/{number}", f"{self.repo_html}/pull/{number}"
        head_sha = self.branches.get(pr["head"], pr.get("head_sha", ""))
        merged_by = pr.get("merged_by")
        return {
            "url": api,
            "id": 50_000 + number,
            "node_id": f"PR_test{number}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{self.repo_api}/issues/{number}",
            "number": number,
            "state": pr["state"],
            "locked": False,
            "title": pr["title"],
            "user": self._user_json(pr["user"]),
            "body": pr["body"],
            "labels": [],
            "created_at": pr["created_at"],
            "updated_at": pr["updated_at"],
            "closed_at": pr.get("closed_at"),
            "merged_at": pr.get("merged_at"),
            "merge_commit_sha": pr.get("merge_commit_sha"),
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "draft": pr.get("draft", False),
            "head": self._branch_side(pr["head"], head_sha),
            "base": self._branch_side(pr["base"], self.branches[pr["base"]]),
            "_links": {"self": {"href": api}, "html": {"href": html}},
            "author_association": "NONE",
            "merged": pr.get("merged", False),
            "mergeable": None,
            "merged_by": self._user_json(merged_by) if merged_by else None,
            "comments": 0,
            "review_comments": 0,
            "commits": len(self.history(pr["head"])) if pr["head"] in self.branches else 0,
        }


def _encode_files(files: dict[str, str | bytes]) -> dict[str, bytes]:
    return {p: (c.encode() if isinstance(c, str) else c) for p, c in files.items()}


# --- the HTTP side -------------------------------------------------------------------------------

REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"


class Handler(BaseHTTPRequestHandler):
    server_version = "GitHub.com"
    protocol_version = "HTTP/1.1"
    gh: FakeGitHub

    def log_message(self, *args) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _handle(self) -> None:
        split = urlsplit(self.path)
        path, query = unquote(split.path), parse_qs(split.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization", "")
        gh = self.gh
        if gh.latency:
            time.sleep(gh.latency)
        with gh.lock:
            status, headers, body = self._dispatch(path, query, raw, auth)
            gh.requests.append(SeenRequest(self.command, path, query, auth, status, time.time()))
        self._send(status, headers, body)

    def _dispatch(self, path: str, query: dict, raw: bytes, auth: str):
        if not path.startswith(API_PREFIX):
            return 404, {}, {"message": "Not Found", "documentation_url": DOCS}
        path = path[len(API_PREFIX) :] or "/"
        fault = self._fault(path)
        if fault is not None and not fault.after:
            return fault.status, fault.headers, fault.body
        result = self._handled(path, query, raw, auth)
        return (fault.status, fault.headers, fault.body) if fault is not None else result

    def _handled(self, path: str, query: dict, raw: bytes, auth: str):
        gh = self.gh
        try:
            if self.command == "POST" and (
                m := re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
            ):
                return 201, {}, _installation_token(gh, int(m.group(1)), auth)
            _authenticate(gh, auth)
            body = json.loads(raw) if raw else {}
            return _route(gh, self.command, path, query, body)
        except GitHubError as exc:
            payload = {"message": exc.message, "documentation_url": DOCS, "status": str(exc.status)}
            if exc.errors:
                payload["errors"] = exc.errors
            return exc.status, {}, payload
        except (ValueError, KeyError) as exc:
            return 400, {}, {"message": f"Problems parsing JSON ({exc})", "documentation_url": DOCS}

    def _fault(self, path: str) -> Fault | None:
        for fault in self.gh.faults:
            if fault.method and fault.method != self.command:
                continue
            if fault.path and not re.search(fault.path, path):
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.gh.faults.remove(fault)
            return fault
        return None

    def _send(self, status: int, headers: dict, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Request-Id", secrets.token_hex(8).upper())
        self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
        for name, value in {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "4999",
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            "X-RateLimit-Used": "1",
            "X-RateLimit-Resource": "core",
            **headers,
        }.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _authenticate(gh: FakeGitHub, auth: str) -> None:
    scheme, _, token = auth.partition(" ")
    expiry = gh.tokens.get(token, -1.0) if scheme.lower() in ("token", "bearer") else -1.0
    if expiry is not None and expiry < time.time():
        raise GitHubError(401, "Bad credentials")


def _installation_token(gh: FakeGitHub, installation_id: int, auth: str) -> dict:
    scheme, _, token = auth.partition(" ")
    if installation_id not in gh.apps:
        raise GitHubError(404, "Not Found")
    app_id, public_key = gh.apps[installation_id]
    if scheme.lower() != "bearer":
        raise GitHubError(401, "A JSON web token could not be decoded")
    try:
        # GitHub requires RS256, an `exp` at most 10 minutes ahead, and the app id as `iss`.
        claims = jwt.decode(
            token, public_key, algorithms=["RS256"], options={"require": ["exp", "iat", "iss"]}
        )
    except jwt.PyJWTError as exc:
        raise GitHubError(401, f"A JSON web token could not be decoded ({exc})")
    if str(claims["iss"]) != app_id or claims["exp"] - time.time() > 660:
        raise GitHubError(401, "'Issuer' claim ('iss') must be an Integer")
    issued = f"ghs_{secrets.token_hex(18)}"
    expires = datetime.now(UTC) + timedelta(hours=1)
    gh.tokens[issued] = expires.timestamp()
    return {
        "token": issued,
        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "permissions": {"contents": "write", "pull_requests": "write", "metadata": "read"},
        "repository_selection": "selected",
    }


def _route(gh: FakeGitHub, method: str, path: str, query: dict, body: dict):
    m = re.match(REPO + r"(?P<rest>/.*)?$", path)
    if not m or (m["owner"], m["repo"]) != (gh.owner, gh.repo):
        raise GitHubError(404, "Not Found")
    rest = m["rest"] or ""
    q = {k: v[-1] for k, v in query.items()}
    for pattern, verb, handler in ROUTES:
        if verb == method and (match := re.fullmatch(pattern, rest)):
            return handler(gh, match, q, body)
    raise GitHubError(404, "Not Found")


def _get_repo(gh, match, q, body):
    return 200, {}, gh._repo_json()


def _get_ref(gh, match, q, body):
    name = match["name"]
    if name not in gh.branches:
        raise GitHubError(404, "Not Found")
    return 200, {}, gh._ref_json(name)


def _matching_refs(gh, match, q, body):
    prefix = match["prefix"]
    return 200, {}, [gh._ref_json(n) for n in sorted(gh.branches) if n.startswith(prefix)]


def _create_ref(gh, match, q, body):
    ref, sha = body.get("ref"), body.get("sha")
    if not isinstance(ref, str) or not ref.startswith("refs/heads/") or ref.count("/") < 2:
        raise GitHubError(422, "Reference name is invalid")
    if sha not in gh.commits:
        raise GitHubError(422, "Object does not exist")
    name = ref.removeprefix("refs/heads/")
    if name in gh.branches:
        raise GitHubError(422, "Reference already exists")
    gh.branches[name] = sha
    gh.forked_from[name] = sha
    return 201, {"Location": f"{gh.repo_api}/git/refs/heads/{name}"}, gh._ref_json(name)


def _get_contents(gh, match, q, body):
    path, ref = match["path"], q.get("ref") or gh.default_branch
    tree = gh._resolve(ref).tree
    if path in tree:
        return 200, {}, gh._content_json(path, tree[path], ref)
    children = sorted(p for p in tree if p.startswith(path.rstrip("/") + "/"))
    if not children:
        raise GitHubError(404, "Not Found")
    return 200, {}, [gh._content_json(p, tree[p], ref, with_content=False) for p in children]


def _put_contents(gh, match, q, body):
    path = match["path"]
    message, content = body.get("message"), body.get("content")
    if not isinstance(message, str) or not isinstance(content, str):
        raise GitHubError(422, 'Invalid request.\n\n"message" and "content" are required.')
    branch = body.get("branch") or gh.default_branch
    if branch not in gh.branches:
        raise GitHubError(404, f"Branch {branch} not found")
    try:
        data = base64.b64decode(content, validate=True)
    except ValueError:
        raise GitHubError(422, "content is not valid Base64")
    current = gh.commits[gh.branches[branch]].tree.get(path)
    if current is not None and "sha" not in body:
        raise GitHubError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
    if current is not None and body["sha"] != blob_sha(current):
        raise GitHubError(409, f"{path} does not match {body['sha']}")
    sha = gh.commit(branch, {path: data}, message)
    result = {"content": gh._content_json(path, data, branch, with_content=False)}
    result["commit"] = gh._commit_json(gh.commits[sha])
    return (200 if current is not None else 201), {}, result


def _list_pulls(gh, match, q, body):
    state = q.get("state", "open")
    pulls = [p for p in gh.pull_requests if state == "all" or p["state"] == state]
    if "head" in q:
        pulls = [p for p in pulls if f"{gh.owner}:{p['head']}" == q["head"]]
    if "base" in q:
        pulls = [p for p in pulls if p["base"] == q["base"]]
    return 200, {}, [gh._pull_json(p) for p in sorted(pulls, key=lambda p: -p["number"])]


def _get_pull(gh, match, q, body):
    return 200, {}, gh._pull_json(gh._pull(int(match["number"])))


def _create_pull(gh, match, q, body):
    head, base, title = body.get("head"), body.get("base"), body.get("title")
    head = head.split(":", 1)[-1] if isinstance(head, str) else head

    def invalid(field: str, code: str = "invalid", message: str | None = None):
        error = {"resource": "PullRequest", "field": field, "code": code}
        if message:
            error = {"resource": "PullRequest", "code": "custom", "message": message}
        raise GitHubError(422, "Validation Failed", [error])

    if not title:
        invalid("title", "missing_field")
    if head not in gh.branches:
        invalid("head")
    if base not in gh.branches:
        invalid("base")
    for p in gh.pull_requests:
        if p["state"] == "open" and p["head"] == head and p["base"] == base:
            invalid("head", message=f"A pull request already exists for {gh.owner}:{head}.")
    if gh.branches[head] == gh.branches[base] or not gh.history(head):
        invalid("head", message=f"No commits between {base} and {head}")
    pr = {
        "number": len(gh.pull_requests) + 1,
        "title": title,
        "body": body.get("body"),
        "head": head,
        "base": base,
        "state": "open",
        "draft": bool(body.get("draft")),
        "user": "release-bot",
        "created_at": _now(),
        "updated_at": _now(),
    }
    gh.pull_requests.append(pr)
    return 201, {"Location": f"{gh.repo_api}/pulls/{pr['number']}"}, gh._pull_json(pr)


ROUTES = [
    (r"", "GET", _get_repo),
    (r"/git/ref/heads/(?P<name>.+)", "GET", _get_ref),
    (r"/git/refs/heads/(?P<name>.+)", "GET", _get_ref),
    (r"/git/matching-refs/heads/(?P<prefix>.*)", "GET", _matching_refs),
    (r"/git/refs", "POST", _create_ref),
    (r"/contents/(?P<path>.+)", "GET", _get_contents),
    (r"/contents/(?P<path>.+)", "PUT", _put_contents),
    (r"/pulls", "GET", _list_pulls),
    (r"/pulls", "POST", _create_pull),
    (r"/pulls/(?P<number>\d+)", "GET", _get_pull),
]


@dataclass
class GitHubServer:
    """A running fake; `.gh` is the state/test API, `.url` the API base URL."""

    gh: FakeGitHub
    httpd: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.gh.url

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def start_github_server() -> GitHubServer:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    host, port = httpd.server_address[:2]
    gh = FakeGitHub(host, port)
    httpd.RequestHandlerClass = type("BoundHandler", (Handler,), {"gh": gh})
    thread = threading.Thread(target=httpd.serve_forever, name="fake-github", daemon=True)
    thread.start()
    return GitHubServer(gh=gh, httpd=httpd, thread=thread)
