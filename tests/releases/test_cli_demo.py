"""`manage.py demo` (docs/cli.md): the whole flow, end to end, as a newcomer runs it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from releases.integrations import buckets
from releases.models import Build

pytestmark = [pytest.mark.slow]  # runs manage.py demo, which starts a server

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = "desktop-app-distributables"
STAGING = "desktop-app-distributables-staging"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def demo_env(data_dir: Path) -> dict[str, str]:
    """What `make run` would see on a fresh machine: SQLite and buckets under DATA_DIR."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GITHUB_", "DATABASE_", "CELERY_", "REVIEW_", "TODESKTOP_"))
        and name not in ("STORAGE_BACKEND", "STAGING_BUCKET", "PRODUCTION_BUCKET", "CACHE_URL")
    }
    return {**env, "DATA_DIR": str(data_dir), "PORT": str(free_port())}


def run_demo(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "demo", "--size-kb", "96"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_demo_takes_a_build_from_todesktop_to_a_working_download_link(tmp_path):
    env = demo_env(tmp_path)
    output = run_demo(env)

    build_id = re.search(r"^Build (demo\w+) \(v1\.0\.1\) is live\.$", output, re.M).group(1)
    for step in range(1, 7):
        assert re.search(rf"^{step}\. ", output, re.M), f"step {step} not narrated"
    assert "/update/latest.yml → 200" in output
    assert "     version: 1.0.1" in output
    assert "/download/mac (Safari on macOS) → 200, 98304 bytes:" in output
    assert f"     Demo App Mac Installer 1.0.1 - Build {build_id}.dmg" in output
    assert "sha256 identical to the staged and verified file" in output
    assert f"  update feed    http://localhost:{env['PORT']}/update/latest.yml" in output
    assert " INFO " not in output  # the demo narrates; service logs only with -v 2

    production = tmp_path / "buckets" / PRODUCTION
    staged = tmp_path / "buckets" / STAGING / build_id
    staged_files = sorted(path.name for path in staged.iterdir())
    assert len(staged_files) == 26
    for name in staged_files:
        assert digest(production / name) == digest(staged / name), name
    builds = json.loads((production / "desktop-builds.json").read_text())
    assert [(b["id"], b["version"], b["isReleased"]) for b in builds] == [(build_id, "1.0.1", True)]
    releases = json.loads((production / "desktop-releases.json").read_text())
    assert releases == {"latestReleaseBuildId": build_id}


def test_running_the_demo_again_releases_a_newer_build_and_keeps_the_audit_chain(tmp_path):
    env = demo_env(tmp_path)
    first = re.search(r"^Build (demo\w+) ", run_demo(env), re.M).group(1)
    second_output = run_demo(env)
    second = re.search(r"^Build (demo\w+) \(v1\.0\.2\) is live\.$", second_output, re.M).group(1)
    assert second != first

    production = tmp_path / "buckets" / PRODUCTION
    builds = json.loads((production / "desktop-builds.json").read_text())
    assert {b["id"] for b in builds} == {first, second}
    releases = json.loads((production / "desktop-releases.json").read_text())
    assert releases["latestReleaseBuildId"] == second
    assert "     version: 1.0.2" in second_output
    verified = subprocess.run(
        [sys.executable, "manage.py", "audit_verify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr
    assert "audit chain intact" in verified.stdout


@pytest.mark.django_db
def test_the_demo_refuses_a_github_review_setup_and_writes_nothing(fs_buckets, settings):
    settings.REVIEW_BACKEND = "github"
    with pytest.raises(CommandError, match="demo failed: the demo approves in the admin"):
        call_command("demo", "--size-kb", "8", stdout=io.StringIO())
    assert list(buckets.production().list()) == []
    assert list(buckets.staging().list()) == []
    assert not Build.objects.exists()


@pytest.mark.django_db
def test_the_demo_rejects_a_size_below_one_kib(fs_buckets):
    with pytest.raises(CommandError, match="--size-kb must be 1 or more"):
        call_command("demo", "--size-kb", "0", stdout=io.StringIO())


@pytest.fixture
def running_server(settings):
    """A server on settings.PORT, as `make run` would have (this process's app and buckets)."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from django.core.wsgi import get_wsgi_application
    from django.db import connections

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

        def handle(self):
            super().handle()
            connections.close_all()  # this thread's connection would outlive the test database

    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.PORT = server.server_address[1]
    yield f"http://127.0.0.1:{settings.PORT}"
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)  # the approval promotes on commit, as in production
def test_the_demo_fetches_from_the_running_server_and_asks_every_required_reviewer(
    fs_buckets, settings, running_server
):
    settings.REVIEW_BACKEND = "admin"
    settings.REQUIRED_APPROVALS = 2
    out = io.StringIO()
    call_command("demo", "--size-kb", "16", "--quiet", stdout=out)
    output = out.getvalue()

    assert f"6. Fetching from the running server ({running_server}):" in output
    assert f"  update feed    {running_server}/update/latest.yml" in output
    assert "   demo-reviewer-1 approved (1/2 approvals)" in output
    assert "   demo-reviewer-2 approved (approved)" in output
    assert "  staged: " not in output  # --quiet
    build = Build.objects.get()
    assert build.status == "live"
    approvers = build.release_requests.get().approvals.values_list("user__username", flat=True)
    assert sorted(approvers) == ["demo-reviewer-1", "demo-reviewer-2"]
    assert f"latest-build-{build.build_id}.yml" in {i.key for i in buckets.production().list()}


@pytest.fixture
def silent_broker(settings):
    """A broker that accepts connections and never answers: /healthz then answers only after
    its check timeout (seconds), as a freshly started server's first /healthz is slow."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    yield
    listener.close()  # resets the waiting connection, so the health check's thread ends


@pytest.mark.django_db(transaction=True)
def test_the_demo_waits_for_a_running_server_whose_healthz_is_slow(
    fs_buckets, settings, silent_broker, running_server
):
    settings.REVIEW_BACKEND = "admin"
    settings.REQUIRED_APPROVALS = 1
    out = io.StringIO()
    call_command("demo", "--size-kb", "8", "--quiet", stdout=out)
    output = out.getvalue()
    assert f"6. Fetching from the running server ({running_server}):" in output
    assert "No server on port" not in output
