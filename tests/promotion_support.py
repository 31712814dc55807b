"""Helpers for the promotion, webhook and reconcile tests: staged builds, releases, a poller."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from releases.integrations import buckets
from releases.integrations.buckets import Bucket
from releases.models import (
    Build,
    BuildFile,
    BuildStatus,
    ReleaseRequest,
    ReleaseState,
    Verification,
)

ROOT = Path(__file__).resolve().parent.parent


def build_files(build_id: str, version: str, *, binaries: int = 2, size: int = 3000) -> dict:
    """Files of one build as ToDesktop names them: binaries, blockmaps, then the manifests."""
    files: dict[str, bytes] = {}
    names = []
    for index in range(binaries):
        name = f"My App Setup {version} - Build {build_id}-part{index}-x64.exe"
        files[name] = os.urandom(size)
        files[f"{name}.blockmap"] = os.urandom(size // 10 + 1)
        names.append(name)
    entries = "".join(f"  - url: {n}\n    size: {len(files[n])}\n" for n in names)
    files[f"latest-build-{build_id}.yml"] = (
        f"version: {version}\nfiles:\n{entries}path: {names[0]}\n"
    ).encode()
    artifacts = {"nsis": {"x64": {"url": f"https://dl.example/{names[0]}"}}}
    files[f"td-latest-build-{build_id}.json"] = json.dumps(
        {"version": version, "artifacts": artifacts}
    ).encode()
    return files


def stage_build(build_id: str, version: str = "1.0.0", **kwargs) -> tuple[Build, dict]:
    """Put a build's files in staging and record them, as the staging worker would."""
    staging = buckets.staging()
    files = build_files(build_id, version, **kwargs)
    build = Build.objects.create(
        build_id=build_id, app_id="app1", version=version, status=BuildStatus.STAGED
    )
    for name, data in files.items():
        info = staging.write_bytes(f"{build_id}/{name}", data)
        BuildFile.objects.create(
            build=build,
            name=name,
            size=info.size,
            staged_at=timezone.now(),
            verification=Verification.VERIFIED,  # staging verifies before the build is staged
        )
    return build, files


def approve(build: Build, *, release_info: dict | None = None, by: str = "ada") -> ReleaseRequest:
    """An admin-approved release request (REVIEW_BACKEND=admin)."""
    return ReleaseRequest.objects.create(
        build=build,
        payload={"buildId": build.build_id, "buildEndedAt": "2025-02-10T10:00:00Z"},
        release_info=release_info,
        state=ReleaseState.APPROVED,
        merged_by=by,
        merged_at=timezone.now(),
    )


def production_contents(production: Bucket | None = None) -> dict[str, bytes]:
    production = production or buckets.production(role="promoter")
    return {info.key: production.read_bytes(info.key) for info in production.list()}


def manifest_names(data: bytes) -> list[str]:
    """File names a staged yml names (`url:` and `path:` lines)."""
    names = []
    for line in data.decode().splitlines():
        line = line.strip().removeprefix("- ")
        if line.startswith(("url: ", "path: ")):
            names.append(line.split(": ", 1)[1])
    return names


class ManifestPoller(threading.Thread):
    """A client: over and over, reads every manifest production lists and fetches what it names.

    Records any moment where a manifest names a file that is not there.
    """

    def __init__(self, production: Bucket) -> None:
        super().__init__(daemon=True)
        self.production = production
        self.stop = threading.Event()
        self.dangling: list[str] = []
        self.rounds = 0
        self.partial_rounds = 0  # rounds that saw some files but not the manifests yet

    def run(self) -> None:
        while not self.stop.is_set():
            keys = [info.key for info in self.production.list()]
            manifests = [k for k in keys if k.endswith(".yml")]
            if keys and not manifests:
                self.partial_rounds += 1
            for key in manifests:
                for name in manifest_names(self.production.read_bytes(key)):
                    if self.production.head(name) is None:
                        self.dangling.append(f"{key} names missing {name}")
            self.rounds += 1


def subprocess_env(**overrides: str) -> dict[str, str]:
    """The environment of a real process that shares this test's database."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:"
        f"{db['PORT']}/{db['NAME']}",
        "REVIEW_BACKEND": settings.REVIEW_BACKEND,
        "DATABASE_CONN_MAX_AGE": "0",
        "LOG_LEVEL": "INFO",
    }
    if settings.STORAGE_BACKEND == "s3":
        env.update(
            STORAGE_BACKEND="s3",
            AWS_S3_ENDPOINT_URL=settings.AWS_S3_ENDPOINT_URL,
            AWS_S3_REGION_NAME="us-east-1",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
        )
    else:
        env.update(STORAGE_BACKEND="filesystem", DATA_DIR=str(settings.BUCKETS_DIR.parent))
    env.update(overrides)
    return env


def start_manage(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


# --- GitHub: the fake server and signed deliveries ---------------------------------------------

WEBHOOK_SECRET = "gh-webhook-secret"


def use_fake_github(settings, server) -> None:
    """Point the GitHub backend at the fake (`tests.fakes.github_server`)."""
    settings.REVIEW_BACKEND = "github"
    settings.GITHUB_API_URL = server.url
    settings.GITHUB_OWNER = "acme"
    settings.GITHUB_REPO = "desktop-releases"
    settings.GITHUB_TOKEN = "ghp_testtoken"
    settings.GITHUB_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.GITHUB_SECONDS_BETWEEN_WRITES = 0
    settings.GITHUB_MAX_RETRIES = 2


def github_signature(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    import hashlib
    import hmac

    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver_github(client, event: str, payload: dict, *, delivery: str | None = None):
    """POST a signed GitHub delivery to /github-webhook through the Django test client."""
    import uuid

    body = json.dumps(payload).encode()
    return client.post(
        "/github-webhook",
        body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT=event,
        HTTP_X_GITHUB_DELIVERY=delivery or str(uuid.uuid4()),
        HTTP_X_HUB_SIGNATURE_256=github_signature(body),
        HTTP_USER_AGENT="GitHub-Hookshot/abc123",
    )


def merged_event(gh, number: int) -> dict:
    """The `pull_request` closed+merged delivery GitHub sends, built from the fake's state."""
    pull = gh.pull(number)
    return {
        "action": "closed",
        "number": number,
        "pull_request": pull,
        "repository": gh._repo_json(),
        "sender": pull["merged_by"] or pull["user"],
    }


def push_event(gh, *, files: list[str], before: str = "0" * 40) -> dict:
    """The `push` delivery for the default branch's newest commit."""
    after = gh.branches[gh.default_branch]
    commit = {
        "id": after,
        "message": "edit",
        "timestamp": "2025-02-10T13:00:00+00:00",
        "added": [],
        "removed": [],
        "modified": files,
        "author": {"name": "Grace", "email": "g@example.com", "username": "grace"},
    }
    return {
        "ref": f"refs/heads/{gh.default_branch}",
        "before": before,
        "after": after,
        "repository": {**gh._repo_json(), "master_branch": gh.default_branch},
        "pusher": {"name": "grace", "email": "g@example.com"},
        "sender": gh._user_json("grace"),
        "compare": f"{gh.repo_html}/compare/{before[:12]}...{after[:12]}",
        "commits": [commit],
        "head_commit": commit,
    }


def open_release_pr(gh, build: Build, *, rules: dict | None = None) -> ReleaseRequest:
    """What the review does: a branch that adds the build, and a PR; the release records it."""
    from releases.integrations import github as github_api

    builds = json.loads(gh.file("desktop-builds.json"))
    entry = {"id": build.build_id, "version": build.version, "createdAt": "2025-02-10T10:00:00Z"}
    files = {"desktop-builds.json": json.dumps([*builds, {**entry, "isReleased": True}], indent=2)}
    if rules is not None:
        files["desktop-releases.json"] = json.dumps(rules, indent=2)
    branch = f"release-build-{build.build_id}"
    gh.branch_create(branch, files=files, message=f"Add build {build.build_id}")
    title = f"[release] Add build {build.build_id}"
    pull = github_api.pull_open(title=title, body="", head=branch, base="main")
    return ReleaseRequest.objects.create(
        build=build,
        state=ReleaseState.IN_REVIEW,
        branch=branch,
        pr_number=pull.number,
        pr_url=pull.url,
    )


def merge_with_webhook(client, gh, release, capture, *, by: str = "grace", review: bool = True):
    """Merge the release's PR on the fake and deliver GitHub's signed merge webhook; promotion
    runs eagerly when it commits. `review`: approve its head first (what branch protection
    asks for)."""
    if review:
        gh.review(release.pr_number, user="ada")
    gh.merge(release.pr_number, merged_by=by)
    with capture(execute=True):
        answer = deliver_github(client, "pull_request", merged_event(gh, release.pr_number))
    assert answer.status_code == 200 and answer.json()["handled"] is True


def go_live_on_github(client, gh, build_id: str, capture, version: str = "1.0.0") -> Build:
    """Stage a build, open its release PR (making it the latest release), approve and merge it:
    the build is live in production."""
    build, _ = stage_build(build_id, version)
    release = open_release_pr(gh, build, rules={"latestReleaseBuildId": build_id})
    merge_with_webhook(client, gh, release, capture)
    return build
