"""Helpers for the feed tests: production content written the way promotion writes it."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import requests
from django.conf import settings

from cdn.metadata import metadata_invalidate
from releases.integrations.buckets import Bucket, FilesystemBucket
from tests.fakes.s3_server import free_port


def publish(
    bucket: Bucket,
    *,
    files: dict[str, bytes] | None = None,
    builds: list[dict] | None = None,
    releases: dict | None = None,
) -> None:
    """Files first, then desktop-builds.json and desktop-releases.json, then invalidate."""
    for key, data in (files or {}).items():
        bucket.write_bytes(key, data)
    if builds is not None:
        bucket.write_bytes("desktop-builds.json", json.dumps(builds, indent=2).encode())
    if releases is not None:
        bucket.write_bytes("desktop-releases.json", json.dumps(releases, indent=2).encode())
    metadata_invalidate()


def build(build_id: str, version: str, released: bool = True) -> dict:
    return {
        "id": build_id,
        "version": version,
        "createdAt": "2025-01-01T00:00:00.000Z",
        "isReleased": released,
    }


def feed_url(path: str) -> str:
    return "/update/" + quote(path)


def parse_multipart(response) -> list[tuple[str, bytes]]:
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    assert int(response["Content-Length"]) == len(raw)
    message = email.message_from_bytes(
        b"Content-Type: " + response["Content-Type"].encode() + b"\r\n\r\n" + raw
    )
    assert message.is_multipart()
    return [(part["Content-Range"], part.get_payload(decode=True)) for part in message.walk()][1:]


# --- A live gunicorn serving the project (for raw HTTP and the electron-updater client) --------


ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    production: FilesystemBucket

    def publish(self, **kwargs) -> None:
        """Write production content: the server's next request sees it (it checks the ETags of
        desktop-*.json at every request, FEED_METADATA_CHECK_SECONDS=0)."""
        publish(self.production, **kwargs)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_live_server(data_dir: Path, **extra_env: str) -> LiveServer:
    """gunicorn (gthread, like production) on a free loopback port, filesystem buckets, and
    production's desktop-*.json checked at every request (no waiting after `publish`)."""
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'db.sqlite3'}",
        "STORAGE_BACKEND": "filesystem",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,feed.example.com",
        "CACHE_URL": "locmemcache://",
        "LOG_LEVEL": "WARNING",
        "FEED_METADATA_CHECK_SECONDS": "0",
        **extra_env,
    }
    command = [
        sys.executable, "-m", "gunicorn", "selfhosted.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread", "--threads", "4",
        "--workers", "1", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            requests.get(f"{url}/update/my-ip", timeout=5)
            break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("gunicorn did not start within 60 s")
    bucket = FilesystemBucket(
        settings.PRODUCTION_BUCKET, data_dir / "buckets" / settings.PRODUCTION_BUCKET
    )
    return LiveServer(url=url, process=process, production=bucket)
