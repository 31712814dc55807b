"""Fault injection against `make run`: processes killed (SIGKILL) at points of a release, and the
SQLite database locked mid-write. After the restart every release ends live, or in a retryable
state that names its reason; no file in production lacks its bytes; nothing is staged twice.

One `manage.py runall` (the embedded defaults: SQLite database, SQLite-file broker, filesystem
buckets, admin review) serves a fake ToDesktop origin's builds, one release per fault point:

- web killed during the webhook request: the request waits on the database's write lock (held
  by another process) when the web process is killed; runall stops, and is started again; the
  delivery is sent again, as ToDesktop does after a failed delivery.
- staging worker killed mid-download of an artifact (served slowly by the origin).
- staging worker killed while its write waits on the locked database: a file is downloaded and
  in the bucket, but not recorded yet.
- database locked mid-staging for longer than the busy timeout (no kill): the write fails and
  the staging task is retried.
- promotion worker killed mid-promotion: the files are copied and the control files written,
  but the worker's next write (the releases going live) waits on the locked database.

The processes are found by runall's process tree (its children: Celery is the worker, the other
one the web server), so the suite holds whatever serves the web. A killed worker comes back by
runall's restart; staging a dead worker took with it is queued again by beat's recovery
(`releases.services.staging_recovery`), a promotion by the periodic reconcile. The suite prints
the final states of each point as a table.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from releases.demo.todesktop_build import FakeBuild
from releases.demo.todesktop_origin import start_origin
from tests.project.test_make_run import Instance
from tests.project.test_make_run_sqlite import (
    APP_ID,
    _approve,
    _instance,
    _post_webhook,
    _query,
    _releases,
    _wait_until,
)

pytestmark = pytest.mark.faults

LEASE_SECONDS = 3
BUSY_TIMEOUT_SECONDS = 2
# A release may end in these states: done, or waiting for someone with the reason shown.
ENDED = {"live"}
RETRYABLE = {"failed", "awaiting_review"}


def _build(build_id: str, version: str, slow: bool = False) -> FakeBuild:
    shape = {"app_id": APP_ID, "build_id": build_id, "version": version, "size": 32 * 1024}
    if not slow:
        return FakeBuild(**shape)
    name = FakeBuild(**shape).layout["linux"]["appImage"]["x64"]
    return FakeBuild(**shape, sizes={name: 640 * 1024})  # ten 64 KiB blocks


def _slow_name(build: FakeBuild) -> str:
    return build.layout["linux"]["appImage"]["x64"]


def _children(instance: Instance) -> dict[str, list[int]]:
    """runall's children by role: the Celery worker, and the web server (whatever it is)."""
    found: dict[str, list[int]] = {"worker": [], "web": []}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == instance.process.pid:
            found["worker" if b"celery" in command else "web"].append(int(entry.name))
    return found


def _kill(instance: Instance, role: str) -> None:
    """SIGKILL a child of runall and everything it started (it runs in its own session)."""
    pids = _wait_until(lambda: _children(instance)[role], 60, f"a {role} process", instance)
    for pid in pids:
        os.killpg(pid, signal.SIGKILL)


class _WriteLock:
    """Another process's write transaction on the database, as a long write would hold it."""

    def __init__(self, database: Path) -> None:
        self.connection = sqlite3.connect(database, isolation_level=None, timeout=60)
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.connection.execute("ROLLBACK")
        self.connection.close()


def _state(database: Path, build_id: str) -> tuple[str, str, str]:
    return _releases(database).get(build_id, ("(none)", "", ""))


def _reached(database: Path, build_id: str, states: set[str]):
    return _state(database, build_id)[0] in states


def _webhook_in_background(instance: Instance, build: FakeBuild) -> dict:
    outcome: dict = {}

    def post() -> None:
        try:
            outcome["status"] = _post_webhook(instance, build)
        except requests.RequestException as exc:
            outcome["error"] = type(exc).__name__

    outcome["thread"] = thread = threading.Thread(target=post)
    thread.start()
    return outcome


@pytest.mark.timeout(480)
def test_releases_survive_killed_processes_and_a_locked_database(tmp_path, capsys):
    builds = {
        "web killed during the webhook request": _build("fault01", "5.0.1"),
        "worker killed mid-download of an artifact": _build("fault02", "5.0.2", slow=True),
        "worker killed while its write waits on the locked database": _build(
            "fault03", "5.0.3", slow=True
        ),
        "database locked mid-staging beyond the busy timeout": _build(
            "fault04", "5.0.4", slow=True
        ),
        "promotion worker killed after the control files, before going live": _build(
            "fault05", "5.0.5"
        ),
    }
    origin = start_origin(*builds.values())
    data = tmp_path / "data"
    database = data / "db.sqlite3"
    env = {
        "DATABASE_URL": f"sqlite:///{database}?timeout={BUSY_TIMEOUT_SECONDS}",
        "STAGING_LEASE_SECONDS": str(LEASE_SECONDS),
        "RECONCILE_INTERVAL_SECONDS": "5",
        "TASK_RETRY_BACKOFF_SECONDS": "1",
    }
    notes: dict[str, str] = {}
    instances = [_instance(data, origin, **env)]
    points = iter(builds.items())
    try:
        instance = instances[-1]
        instance.wait_healthy()

        point, build = next(points)  # the web, killed while the request waits on the database
        lock = _WriteLock(database)
        outcome = _webhook_in_background(instance, build)
        time.sleep(BUSY_TIMEOUT_SECONDS / 2)  # the request is in its write, waiting
        _kill(instance, "web")
        lock.release()
        outcome["thread"].join(timeout=30)
        stored = _state(database, build.build_id)[0]
        assert instance.process.wait(timeout=60) != 0  # runall stops with its web process
        instances.append(_instance(data, origin, **env))
        instance = instances[-1]
        instance.wait_healthy()
        again = _post_webhook(instance, build)  # ToDesktop delivers again after a failure
        notes[point] = f"client saw {outcome.get('error') or outcome.get('status')}; "
        notes[point] += f"stored before restart: {stored}; sent again: {again}"
        _wait_until(lambda: _reached(database, build.build_id, {"in_review"}), 60, point, instance)

        point, build = next(points)  # the worker, killed mid-download
        slow = _slow_name(build)
        origin.slow(slow, seconds_per_block=0.3)
        assert _post_webhook(instance, build) == 202
        _wait_until(lambda: origin.requested(slow), 60, f"{point}: the download", instance)
        time.sleep(1)  # some blocks in
        _kill(instance, "worker")
        notes[point] = _at_kill(database, build)
        origin._slow.clear()
        _wait_until(lambda: _reached(database, build.build_id, {"in_review"}), 90, point, instance)

        point, build = next(points)  # the worker, killed while its write waits on the lock
        slow = _slow_name(build)
        origin.slow(slow, seconds_per_block=0.3)
        assert _post_webhook(instance, build) == 202
        _wait_until(lambda: origin.requested(slow), 60, f"{point}: the download", instance)
        lock = _WriteLock(database)
        origin._slow.clear()  # the rest of the body arrives; recording it waits on the lock
        time.sleep(BUSY_TIMEOUT_SECONDS / 2)
        _kill(instance, "worker")
        lock.release()
        notes[point] = _at_kill(database, build)
        _wait_until(lambda: _reached(database, build.build_id, {"in_review"}), 90, point, instance)

        point, build = next(points)  # the database locked for longer than the busy timeout
        slow = _slow_name(build)
        origin.slow(slow, seconds_per_block=0.3)
        assert _post_webhook(instance, build) == 202
        _wait_until(lambda: origin.requested(slow), 60, f"{point}: the download", instance)
        lock = _WriteLock(database)
        time.sleep(BUSY_TIMEOUT_SECONDS * 2)
        lock.release()
        origin._slow.clear()
        _wait_until(lambda: _reached(database, build.build_id, {"in_review"}), 90, point, instance)

        point, build = next(points)  # the promotion worker, killed before "live" is recorded
        assert _post_webhook(instance, build) == 202
        _wait_until(lambda: _reached(database, build.build_id, {"in_review"}), 60, point, instance)
        builds_file = data / "buckets" / "desktop-app-distributables" / "desktop-builds.json"
        with open(data / "promotion.lock", "a+") as promotion_lock:
            fcntl.flock(promotion_lock, fcntl.LOCK_EX)  # promotions wait until we let go
            _approve(instance, *(b.build_id for b in builds.values()))
            lock = _WriteLock(database)
            fcntl.flock(promotion_lock, fcntl.LOCK_UN)
            _wait_until(
                lambda: builds_file.exists() and build.build_id in builds_file.read_text(),
                60,
                f"{point}: the control files",
                instance,
            )
            time.sleep(0.5)  # its next write is waiting on the lock
            _kill(instance, "worker")
            lock.release()
        at_kill = _state(database, build.build_id)[:2]
        notes[point] = _at_kill(database, build) + ", control files written"
        assert at_kill == ("approved", "approved"), at_kill
        ids = [b.build_id for b in builds.values()]
        _wait_until(
            lambda: all(_reached(database, b, ENDED | RETRYABLE) for b in ids),
            120,
            "every release to end",
            instance,
        )
    finally:
        for each in instances:
            each.stop()
        origin.stop()
        table = _table(database, builds, notes) if database.exists() else "(no database)"
        with capsys.disabled():
            print(f"\n\nFault injection, final states ({len(builds)} points):\n{table}\n")

    production = data / "buckets" / "desktop-app-distributables"
    output = "\n".join(each.output() for each in instances)
    for point, build in builds.items():
        state, status, reason = _state(database, build.build_id)
        assert state in ENDED or (state in RETRYABLE and reason), (point, state, output[-4000:])
        assert state == "live", (point, state, reason)  # every fault here is recovered from
    assert _staged_twice(database) == {}
    assert _production_problems(production, database) == []
    kinds = Counter(kind for (kind,) in _query(database, "SELECT kind FROM releases_auditevent"))
    assert kinds["staging.requeued"] >= 2  # the two killed stagings were queued again
    assert kinds["staging.failed"] == 0 and kinds["promotion.failed"] == 0


def _at_kill(database: Path, build: FakeBuild) -> str:
    state, status, _ = _state(database, build.build_id)
    return f"at the kill: release {state}, build {status}"


def _staged_twice(database: Path) -> dict[tuple[str, str], int]:
    rows = _query(
        database,
        "SELECT b.build_id, e.data FROM releases_auditevent e JOIN releases_build b "
        "ON b.id = e.build_id WHERE e.kind = 'staging.file_staged'",
    )
    counts = Counter((build_id, json.loads(data)["name"]) for build_id, data in rows)
    return {key: count for key, count in counts.items() if count > 1}


def _production_problems(production: Path, database: Path) -> list[str]:
    """Every object in production holds the bytes staging verified for its name, every build
    listed has all its files there, and the two control files are a readable pair."""
    problems = []
    recorded = {
        name: (sha256, size)
        for name, sha256, size in _query(
            database, "SELECT name, sha256, size FROM releases_buildfile"
        )
    }
    present = {p.name for p in production.iterdir()}
    for path in sorted(production.iterdir()):
        if path.name in ("desktop-builds.json", "desktop-releases.json"):
            continue
        if path.name not in recorded:
            problems.append(f"{path.name}: not a file staging recorded (a leftover?)")
            continue
        sha256, size = recorded[path.name]
        data = path.read_bytes()
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            problems.append(f"{path.name}: {len(data)} bytes, not the {size} staged")
    try:
        listed = [e["id"] for e in json.loads((production / "desktop-builds.json").read_text())]
        assert isinstance(json.loads((production / "desktop-releases.json").read_text()), dict)
    except (OSError, ValueError, AssertionError) as exc:
        return [*problems, f"control files: {exc!r}"]
    for build_id in listed:
        names = _query(
            database,
            "SELECT f.name FROM releases_buildfile f JOIN releases_build b ON b.id = f.build_id "
            "WHERE b.build_id = ?",
            build_id,
        )
        problems += [f"{build_id}: {n} missing" for (n,) in names if n not in present]
    return problems


def _table(database: Path, builds: dict[str, FakeBuild], notes: dict[str, str]) -> str:
    staged = dict(
        _query(
            database,
            "SELECT b.build_id, count(*) FROM releases_auditevent e JOIN releases_build b "
            "ON b.id = e.build_id WHERE e.kind = 'staging.file_staged' GROUP BY b.build_id",
        )
    )
    requeued = dict(
        _query(
            database,
            "SELECT b.build_id, count(*) FROM releases_auditevent e JOIN releases_build b "
            "ON b.id = e.build_id WHERE e.kind = 'staging.requeued' GROUP BY b.build_id",
        )
    )
    rows = [("fault point", "build", "release", "build status", "files staged", "requeued")]
    for point, build in builds.items():
        state, status, reason = _state(database, build.build_id)
        rows.append(
            (
                point,
                build.build_id,
                state + (f" ({reason})" if reason else ""),
                status,
                f"{staged.get(build.build_id, 0)}/{len(build.all_names())}",
                str(requeued.get(build.build_id, 0)),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines += [f"  {point}: {note}" for point, note in notes.items()]
    return "\n".join(lines)
