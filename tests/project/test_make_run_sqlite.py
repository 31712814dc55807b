"""`make run`'s embedded SQLite under real use: a burst of webhooks, a promotion overlapping
stagings, a database locked mid-write (in a directory that did not exist yet), and a database
that cannot be reached.

Each test starts `manage.py runall` (gunicorn + a Celery worker with beat, the SQLite database
and the SQLite-file broker under a fresh DATA_DIR) and a fake ToDesktop origin on loopback.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from releases.demo.todesktop_build import FakeBuild
from tests.fakes.s3_server import free_port
from tests.fakes.todesktop_origin import FakeOrigin, start_origin
from tests.project.test_make_run import ROOT, Instance
from tests.webhook_support import FIXTURE, SIGNATURE, sign

pytestmark = [pytest.mark.slow]  # runs make run (gunicorn + a worker)

HMAC_KEY = "make-run-sqlite-hmac-key"
APP_ID = FIXTURE["appId"]
DONE = ("in_review", "awaiting_review", "live", "failed", "rejected")


def _builds(count: int, tag: str) -> list[FakeBuild]:
    return [
        FakeBuild(app_id=APP_ID, build_id=f"{tag}{n:02d}", version=f"2.0.{n}", size=32 * 1024)
        for n in range(count)
    ]


def _instance(data_dir: Path, origin: FakeOrigin, **env: str) -> Instance:
    return Instance(
        data_dir,
        WEBHOOK_HMAC_KEY=HMAC_KEY,
        TODESKTOP_APP_ID=APP_ID,
        TODESKTOP_DOWNLOAD_BASE_URL=origin.url,
        REVIEW_BACKEND="admin",
        **env,
    )


def _post_webhook(instance: Instance, build: FakeBuild) -> int:
    body = json.dumps(
        {**FIXTURE, "buildId": build.build_id, "appVersion": build.version, "releaseInfo": None}
    ).encode()
    answer = requests.post(
        f"{instance.base}/new-release-webhook",
        data=body,
        headers={"Content-Type": "application/json", SIGNATURE: sign(body, HMAC_KEY)},
        timeout=60,
    )
    return answer.status_code


def _query(database: Path, sql: str, *params) -> list[tuple]:
    """Read what the processes wrote, as an operator's sqlite3 shell would."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def _releases(database: Path) -> dict[str, tuple[str, str, str]]:
    """build id → (release state, build status, failure reason)."""
    rows = _query(
        database,
        "SELECT b.build_id, r.state, b.status, r.failure_reason FROM releases_releaserequest r "
        "JOIN releases_build b ON b.id = r.build_id",
    )
    return {build_id: (state, status, reason) for build_id, state, status, reason in rows}


def _wait_until(predicate, seconds: float, what: str, instance: Instance):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        assert instance.process.poll() is None, instance.output()[-5000:]
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{instance.output()[-5000:]}")


def _settled(database: Path, build_ids: list[str]):
    releases = _releases(database)
    if all(releases.get(b, ("",))[0] in DONE for b in build_ids):
        return releases
    return None


def _approve(instance: Instance, *build_ids: str) -> None:
    """Approve in the admin backend from a third process (`manage.py shell`), which queues the
    promotion on the embedded broker: the worker then promotes while it stages others."""
    code = (
        "from django.contrib.auth import get_user_model;"
        "from releases.models import ReleaseRequest;"
        "from releases.services.approvals import release_decide;"
        "from django.contrib.auth.models import Group;"
        "user, _ = get_user_model().objects.get_or_create(username='sqlite-reviewer');"
        "user.groups.add(Group.objects.get(name='approvers'));"
        f"releases = ReleaseRequest.objects.filter(build__build_id__in={list(build_ids)!r});"
        "print(*(release_decide(release=r, user=user, approve=True) for r in releases))"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=instance.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    decided = done.stdout.strip().splitlines()[-1:]
    assert decided == [" ".join(["approved"] * len(build_ids))], done.stdout + done.stderr


def _files(database: Path, build_id: str) -> dict[str, str]:
    rows = _query(
        database,
        "SELECT f.name, f.verification FROM releases_buildfile f "
        "JOIN releases_build b ON b.id = f.build_id WHERE b.build_id = ?",
        build_id,
    )
    return dict(rows)


@pytest.mark.timeout(420)
def test_eight_webhooks_at_once_all_reach_review_while_a_promotion_runs(tmp_path):
    first, *burst = _builds(9, "burst")
    origin = start_origin(first, *burst)
    # One burst build's download stays in flight until the promotion is live, so the promotion
    # runs amid a staging whatever the machine's speed; the others are staged meanwhile.
    held = burst[-1].layout["linux"]["appImage"]["x64"]
    release_held = origin.hold(held)
    instance = _instance(tmp_path / "data", origin)
    database = tmp_path / "data" / "db.sqlite3"
    ids = [build.build_id for build in burst]
    try:
        instance.wait_healthy()
        assert _post_webhook(instance, first) == 202
        _wait_until(lambda: _settled(database, [first.build_id]), 120, "build 1", instance)
        with ThreadPoolExecutor(len(burst)) as pool:
            statuses = list(pool.map(lambda build: _post_webhook(instance, build), burst))
        assert statuses == [202] * len(burst)
        _wait_until(lambda: origin.requested(held), 120, f"staging to reach {held}", instance)
        _approve(instance, first.build_id)
        _wait_until(lambda: _live(database, first), 240, "the promotion", instance)
        release_held.set()
        _wait_until(lambda: _settled(database, ids), 240, "every release to settle", instance)
    finally:
        assert instance.stop() == 0
        origin.stop()
    releases = _releases(database)
    assert releases.pop(first.build_id)[:2] == ("live", "live")
    assert releases == {b: ("in_review", "in_review", "") for b in ids}, instance.output()[-5000:]
    for build in burst:
        files = _files(database, build.build_id)
        assert set(files) == set(build.documents()) | set(build.files)
        assert {files[name] for name in build.artifact_names} == {"verified"}
        assert set(files.values()) <= {"verified", "unchecked"}
    kinds = [kind for (kind,) in _query(database, "SELECT kind FROM releases_auditevent")]
    assert [kind for kind in kinds if kind.endswith("failed")] == []
    assert _staging_during_promotion(database), "the promotion did not overlap any staging"


def _staging_during_promotion(database: Path) -> list[str]:
    """Builds whose staging started before the promotion's `release.live` and ended after."""
    rows = _query(
        database,
        "SELECT e.kind, e.sequence, b.build_id FROM releases_auditevent e "
        "LEFT JOIN releases_build b ON b.id = e.build_id ORDER BY e.sequence",
    )
    live = next(sequence for kind, sequence, _ in rows if kind == "release.live")
    started = {b: sequence for kind, sequence, b in rows if kind == "staging.started"}
    verified = {b: sequence for kind, sequence, b in rows if kind == "staging.verified"}
    return [b for b in started if started[b] < live < verified.get(b, 0)]


def _live(database: Path, build: FakeBuild) -> bool:
    return _releases(database).get(build.build_id, ("",))[0] == "live"


@pytest.mark.timeout(300)
def test_a_database_locked_mid_staging_is_retried_not_a_failed_build(tmp_path):
    """Another process holds SQLite's write lock for longer than the busy timeout while a build
    is being staged: the staging task fails its write, is retried, and the build reaches review.

    The database lives in a directory that does not exist yet (`DATABASE_URL=sqlite:///<dir>/
    db.sqlite3`, which used to stop `make run` with a traceback): it is created, as DATA_DIR is.
    """
    shape = {"app_id": APP_ID, "build_id": "locked01", "version": "3.0.0", "size": 32 * 1024}
    slow = FakeBuild(**shape).layout["linux"]["appImage"]["x64"]
    build = FakeBuild(**shape, sizes={slow: 640 * 1024})  # ten blocks, served slowly
    origin = start_origin(build)
    origin.slow(slow, seconds_per_block=0.3)
    database = tmp_path / "not" / "there" / "yet" / "db.sqlite3"
    instance = _instance(
        tmp_path / "data",
        origin,
        DATABASE_URL=f"sqlite:///{database}?timeout=0.5",
        STAGING_LEASE_SECONDS="2",
        TASK_RETRY_BACKOFF_SECONDS="1",
    )
    try:
        assert all(check["ok"] for check in instance.wait_healthy()["checks"].values())
        assert database.is_file()
        assert _post_webhook(instance, build) == 202
        _wait_until(lambda: origin.requested(slow), 60, f"staging to reach {slow}", instance)
        lock = sqlite3.connect(database, isolation_level=None, timeout=30)
        lock.execute("BEGIN IMMEDIATE")  # the write lock, as a long write of another process
        time.sleep(3)
        lock.execute("ROLLBACK")
        lock.close()
        origin._slow.clear()
        releases = _wait_until(
            lambda: _settled(database, [build.build_id]), 120, "the release to settle", instance
        )
    finally:
        assert instance.stop() == 0
        origin.stop()
    output = instance.output()
    assert "database is locked" in output  # the lock did hit a write of the staging task
    assert releases[build.build_id] == ("in_review", "in_review", ""), output[-5000:]
    assert _query(
        database, "SELECT count(*) FROM releases_auditevent WHERE kind = ?", "staging.failed"
    ) == [(0,)]


def test_make_run_with_an_unreachable_database_stops_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    port = free_port()  # nothing listens there
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "PORT": str(free_port()),
            "DATABASE_URL": f"postgres://releases:s3cret@127.0.0.1:{port}/releases",
        }
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "runall"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("configuration error: DATABASE_URL: cannot use the database (")
    assert "s3cret" not in done.stderr


@pytest.mark.timeout(240)
def test_a_webhook_waiting_for_the_write_lock_never_pauses_the_feed(tmp_path):
    """Another process holds SQLite's write lock for 4 s while a webhook arrives: the webhook
    waits for it (and is accepted), and the feed and download polls that reach the same web
    process meanwhile are answered at once. Under gevent, SQLite's wait used to hold the event
    loop: every poll of that process waited for the lock too."""
    build = FakeBuild(app_id=APP_ID, build_id="lockwait1", version="4.0.0", size=32 * 1024)
    origin = start_origin(build)
    instance = _instance(tmp_path / "data", origin, WEB_CONCURRENCY="1")
    database = tmp_path / "data" / "db.sqlite3"
    slowest = 0.0
    try:
        instance.wait_healthy()
        requests.get(f"{instance.base}/update/latest.yml", timeout=10)  # warm
        lock = sqlite3.connect(database, isolation_level=None, timeout=30)
        lock.execute("BEGIN IMMEDIATE")
        with ThreadPoolExecutor(1) as pool:
            webhook = pool.submit(_post_webhook, instance, build)
            time.sleep(0.5)  # the webhook is in, waiting for the lock
            deadline = time.monotonic() + 3
            polls = 0
            while time.monotonic() < deadline:
                started = time.monotonic()
                answer = requests.get(f"{instance.base}/update/latest.yml", timeout=30)
                slowest = max(slowest, time.monotonic() - started)
                assert answer.status_code in (200, 404)
                polls += 1
            waited = not webhook.done()
            lock.execute("ROLLBACK")
            lock.close()
            assert slowest < 1.0, f"a poll waited {slowest:.2f} s behind the webhook's lock wait"
            assert polls >= 10, polls
            assert waited, "the webhook did not wait for the lock"
            assert webhook.result(timeout=60) == 202
    finally:
        assert instance.stop() == 0
        origin.stop()
