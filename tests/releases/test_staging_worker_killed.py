"""A staging worker killed with SIGKILL in the middle of a file: the build still finishes
(docs/staging.md).

A real Celery worker (`-Q staging`, solo pool so the task runs in the process we kill) on Redis
and PostgreSQL stages a build whose AppImage the fake origin serves slowly. Half-way through it
is killed; Redis re-delivers the unacknowledged task (small visibility timeout), a new worker
takes over the stale claim, skips what was finished and stages the rest — once.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings

from releases.integrations import buckets
from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest
from tests.buckets_support import filesystem_storages
from tests.fakes.todesktop_origin import FakeBuild, start_origin

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
    pytest.mark.slow,  # starts and kills a Celery worker
]

ROOT = Path(__file__).resolve().parents[2]
VISIBILITY_TIMEOUT = 3


def _worker_env(origin_url: str, data_dir: Path) -> dict[str, str]:
    db = django_settings.DATABASES["default"]
    database_url = (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "selfhosted.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "STAGING_LEASE_SECONDS": "2",
        "HTTP_RETRY_BACKOFF_SECONDS": "0.05",
        "STORAGE_BACKEND": "filesystem",
        "DATA_DIR": str(data_dir),
        "TODESKTOP_DOWNLOAD_BASE_URL": origin_url,
        "REVIEW_BACKEND": "admin",
        "SECRET_KEY": "tests-only-secret-key",
    }


def _start_worker(env: dict[str, str], log: Path, queues: str = "staging") -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "selfhosted", "worker", "-Q", queues]
    command += ["-P", "solo", "-l", "info", "--without-gossip", "--without-mingle"]
    command += ["--without-heartbeat"]
    handle = open(log, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: only what we started
        process.wait(timeout=30)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_worker_leaves_a_build_that_a_new_worker_finishes_once(tmp_path, settings):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # our own Redis db number
    slow_name = FakeBuild().layout["linux"]["appImage"]["x64"]
    fake = FakeBuild(platforms=("linux", "mac"), sizes={slow_name: 6 * 1024 * 1024})
    origin = start_origin(fake)
    origin.slow(slow_name, seconds_per_block=0.05)  # 96 blocks: about 5 s
    filesystem_storages(settings, tmp_path / "data" / "buckets")
    build = Build.objects.create(build_id=fake.build_id, app_id=fake.app_id)
    release = ReleaseRequest.objects.create(build=build, payload={"buildId": fake.build_id})
    env = _worker_env(origin.url, tmp_path / "data")
    log = tmp_path / "worker.log"
    workers = [_start_worker(env, log)]
    try:
        from selfhosted.celery import app

        app.send_task("releases.tasks.stage_build", args=[release.pk], queue="staging")
        _wait(lambda: origin.requested(slow_name), 60, f"the worker to start {slow_name}")
        time.sleep(1.5)  # well inside the slow body
        assert not buckets.staging().exists(f"{fake.build_id}/{slow_name}")
        _kill(workers[0])
        killed_at_status = Build.objects.get(pk=build.pk).status
        origin._slow.clear()
        time.sleep(VISIBILITY_TIMEOUT + 1)  # the message is now due for re-delivery

        workers.append(_start_worker(env, log))
        done = (BuildStatus.STAGED, BuildStatus.IN_REVIEW)
        _wait(
            lambda: Build.objects.get(pk=build.pk).status in done,
            120,
            f"the new worker to finish the build (log: {log.read_text()[-3000:]})",
        )
    finally:
        for worker in workers:
            _kill(worker)
        origin.stop()

    assert killed_at_status == BuildStatus.STAGING
    staging = buckets.staging()
    expected = set(fake.documents()) | set(fake.files)
    keys = {info.key.split("/", 1)[1] for info in staging.list(f"{fake.build_id}/")}
    assert keys == expected
    for name, file in fake.files.items():
        data = staging.read_bytes(f"{fake.build_id}/{name}")
        assert hashlib.sha256(data).hexdigest() == file.hashes["sha256"], name
    build.refresh_from_db()
    assert build.files.count() == len(expected)
    staged_events = AuditEvent.objects.filter(build=build, kind="staging.file_staged")
    names = [event.data["name"] for event in staged_events]
    assert sorted(names) == sorted(expected)  # every file staged exactly once: no duplicates
    assert AuditEvent.objects.filter(build=build, kind="staging.file_skipped").exists()
    assert len([e for e in origin.requested(slow_name) if e.method == "GET"]) == 2
    assert AuditEvent.objects.filter(build=build, kind="staging.started").count() == 2
