"""A fake GitHub REST API on loopback, for the tests (docs/review.md).

A real HTTP server (ThreadingHTTPServer in a thread) that speaks the part of GitHub's REST API
that `releases.integrations.github` uses through PyGithub, with GitHub's documented response shapes,
status codes and error bodies (https://docs.github.com/en/rest): the repository, git refs, contents
get/put (base64 + blob sha), pulls list/create/get, a pull's reviews (with the commit each
was given on), and installation access tokens for GitHub App
authentication. It is served under `/api/v3`, like GitHub Enterprise Server, so
`GITHUB_API_URL` is exercised too.

State is git-like: commits hold a full tree (path → bytes) and a parent; branches point at
commits; pull requests point at branches. Tests drive and inspect it in plain Python:

    gh = start_github_server()
    gh.reset(files={"desktop-builds.json": "[]"})     # a fresh repository
    gh.files("main")                                   # {path: text} on a branch
    gh.branch_create("release-build-x", files={...})   # a branch with one commit on top
    gh.pulls()                                         # GitHub-shaped PR dicts
    gh.review(1, user="ada")                           # an approval of PR #1's head commit
    gh.merge(1, merged_by="octocat")                   # merge a PR into its base
    gh.fail(502)                                       # the next request gets a 502
    gh.rate_limit(retry_after=1)                       # the next request: 403 secondary limit
    gh.requests                                        # every request seen (method, path, …)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer

from tests.fakes.github_server.api import Handler
from tests.fakes.github_server.common import API_PREFIX, blob_sha
from tests.fakes.github_server.state import FakeGitHub

__all__ = ["API_PREFIX", "FakeGitHub", "GitHubServer", "blob_sha", "start_github_server"]


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
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-github", daemon=True
    )
    thread.start()
    return GitHubServer(gh=gh, httpd=httpd, thread=thread)
