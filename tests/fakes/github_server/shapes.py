"""GitHub's documented JSON shapes (https://docs.github.com/en/rest), built from the state."""

from __future__ import annotations

import base64
import hashlib

from tests.fakes.github_server.common import Commit, blob_sha, now


class Shapes:
    """Mixed into FakeGitHub: every response body PyGithub parses comes from here."""

    owner: str
    repo: str
    url: str
    web_url: str
    default_branch: str
    branches: dict[str, str]

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
            "updated_at": now(),
            "pushed_at": now(),
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

    def _review_json(self, pr: dict, review: dict) -> dict:
        number = pr["number"]
        html = f"{self.repo_html}/pull/{number}#pullrequestreview-{review['id']}"
        return {
            "id": review["id"],
            "node_id": f"PRR_test{review['id']}",
            "user": self._user_json(review["user"]),
            "body": review["body"],
            "state": review["state"],
            "html_url": html,
            "pull_request_url": f"{self.repo_api}/pulls/{number}",
            "author_association": "MEMBER",
            "_links": {"html": {"href": html}, "pull_request": {"href": ""}},
            "submitted_at": review["submitted_at"],
            "commit_id": review["commit_id"],
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
