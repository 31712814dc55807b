"""End to end with a real worker: signed ToDesktop webhook → staged → PR in the fake GitHub →
signed merge webhook → every file live in production (the whole path of docs/architecture.md).

The web side is this test's Django (test client, tasks sent to Redis, not run eagerly); the
worker is a real `celery worker -Q staging,promotion` process on the same PostgreSQL database,
Redis broker and filesystem buckets; ToDesktop and GitHub are the loopback fakes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import redis

from releases.integrations import buckets
from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState
from tests.fakes.github_server import start_github_server
from tests.fakes.todesktop_origin import FakeBuild, start_origin
from tests.promotion_support import (
    ROOT,
    deliver_github,
    merged_event,
    production_contents,
    subprocess_env,
    use_fake_github,
)
from tests.webhook_support import HMAC_KEY, payload, post

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
    pytest.mark.slow,  # starts a Celery worker
]


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def not_eager():
    """Tasks go to the real broker, where the worker takes them."""
    from selfhosted.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    redis.Redis.from_url(app.conf.broker_url).flushdb()  # our own Redis db number
    yield
    app.conf.task_always_eager = eager


def test_a_release_goes_from_todesktop_webhook_to_production(
    client, settings, tmp_path, not_eager, any_buckets
):
    fake = FakeBuild()
    origin = start_origin(fake)
    github = start_github_server()
    gh = github.gh
    gh.reset(files={"desktop-builds.json": "[]\n"})
    use_fake_github(settings, github)
    settings.WEBHOOK_HMAC_KEY = HMAC_KEY
    settings.TODESKTOP_APP_ID = fake.app_id
    env = subprocess_env(
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CELERY_TASK_ALWAYS_EAGER="false",
        TODESKTOP_DOWNLOAD_BASE_URL=origin.url,
        TODESKTOP_APP_ID=fake.app_id,
        WEBHOOK_HMAC_KEY=HMAC_KEY,
        REVIEW_BACKEND="github",
        GITHUB_API_URL=github.url,
        GITHUB_OWNER="acme",
        GITHUB_REPO="desktop-releases",
        GITHUB_TOKEN="ghp_testtoken",
        GITHUB_SECONDS_BETWEEN_WRITES="0",
    )
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "selfhosted", "worker"]
    command += ["-Q", "staging,promotion", "-P", "solo", "-l", "info", "--without-gossip"]
    command += ["--without-mingle", "--without-heartbeat"]
    with open(log, "ab") as handle:
        worker = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        body = payload(appId=fake.app_id, buildId=fake.build_id, appVersion=fake.version)
        assert post(client, body).status_code == 202

        _wait(lambda: gh.pulls("open"), 120, f"the review PR (log: {_tail(log)})")
        release = ReleaseRequest.objects.get(build__build_id=fake.build_id)
        _wait(lambda: _state(release) == ReleaseState.IN_REVIEW, 30, "the PR to be recorded")
        release.refresh_from_db()
        # staged: every file in staging, verified against the manifests, in one PR
        build = Build.objects.get(build_id=fake.build_id)
        assert build.staged_at is not None
        files = list(build.files.all())
        assert {f.name for f in files} >= set(fake.files)
        assert all(f.verification in ("verified", "unchecked") for f in files)
        installers = [f for f in files if not f.name.endswith((".blockmap", ".yml", ".json"))]
        assert installers and all(f.verification == "verified" for f in installers)
        [pull] = gh.pulls("open")
        assert all(f.name in pull["body"] for f in files)
        gh.review(release.pr_number, user="ada")  # the security lead approves its head
        gh.merge(release.pr_number, merged_by="grace")
        answer = deliver_github(client, "pull_request", merged_event(gh, release.pr_number))
        assert answer.status_code == 200 and answer.json()["handled"] is True

        _wait(lambda: _state(release) == ReleaseState.LIVE, 120, f"live (log: {_tail(log)})")
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)  # its own session: only what we started
            worker.wait(timeout=30)
        origin.stop()
        github.stop()

    staging = buckets.staging()
    staged = {info.key.split("/", 1)[1]: info for info in staging.list(f"{fake.build_id}/")}
    contents = production_contents()
    for name in fake.files:
        assert contents[name] == staging.read_bytes(f"{fake.build_id}/{name}"), name
    assert set(staged) <= set(contents)
    assert contents["desktop-builds.json"] == gh.file("desktop-builds.json").encode()
    assert contents["desktop-releases.json"] == gh.file("desktop-releases.json").encode()
    assert json.loads(contents["desktop-releases.json"])["latestReleaseBuildId"] == fake.build_id
    release.refresh_from_db()
    assert release.merged_by == "grace" and release.live_at is not None
    assert Build.objects.get(build_id=fake.build_id).status == BuildStatus.LIVE
    kinds = list(AuditEvent.objects.filter(release=release).values_list("kind", flat=True))
    assert "github.pr_merged" in kinds and "release.live" in kinds


def _state(release: ReleaseRequest) -> str:
    return ReleaseRequest.objects.get(pk=release.pk).state


def _tail(log) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""
