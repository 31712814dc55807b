"""The HTTP side of the fake GitHub: authentication, faults, routes."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

from tests.fakes.github_server.common import (
    API_PREFIX,
    DOCS,
    Fault,
    GitHubError,
    SeenRequest,
    blob_sha,
    now,
)
from tests.fakes.github_server.state import FakeGitHub

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


def _list_reviews(gh, match, q, body):
    pr = gh._pull(int(match["number"]))
    return 200, {}, [gh._review_json(pr, review) for review in pr.get("reviews", [])]


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
        "created_at": now(),
        "updated_at": now(),
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
    (r"/pulls/(?P<number>\d+)/reviews", "GET", _list_reviews),
]
