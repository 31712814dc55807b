"""The promotion lock: one holder at a time, released when the holder dies (PostgreSQL and the
SQLite/`make run` file lock)."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from django.db import connection

from releases.services.promotion.lock import (
    ADVISORY_LOCK_KEY,
    PromotionLockTimeout,
    _file_lock,
    promotion_lock,
)
from tests.promotion_support import ROOT

pytestmark = [pytest.mark.slow]  # starts manage.py processes


def _other_session_can_lock() -> bool:
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    ) as other:
        got = other.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY]).fetchone()[0]
        if got:
            other.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
        return got


@pytest.mark.django_db
def test_while_one_promotion_holds_the_lock_no_other_session_gets_it():
    with promotion_lock():
        assert _other_session_can_lock() is False
    assert _other_session_can_lock() is True


def test_the_file_lock_admits_one_holder_and_times_out_the_other(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    with _file_lock(timeout=5), pytest.raises(PromotionLockTimeout):
        with _file_lock(timeout=0.3):
            pass
    with _file_lock(timeout=0.3):  # released on exit
        pass


def test_a_killed_holder_of_the_file_lock_releases_it(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)",
            str(tmp_path / "promotion.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PromotionLockTimeout), _file_lock(timeout=0.3):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=10)
        holder.stdout.close()
    with _file_lock(timeout=5):
        pass


def test_reconcile_works_on_sqlite_for_make_run(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DATA_DIR": str(tmp_path),
        "STORAGE_BACKEND": "filesystem",
        "REVIEW_BACKEND": "admin",
    }

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    manage("migrate", "--verbosity", "0")
    first = manage("reconcile")
    second = manage("reconcile")

    assert "write desktop-builds.json" in first
    assert second.strip() == "in sync"
    assert (tmp_path / "buckets" / "desktop-app-distributables" / "desktop-builds.json").exists()
    assert (tmp_path / "promotion.lock").exists()
