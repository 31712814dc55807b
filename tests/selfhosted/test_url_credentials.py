"""Credentials in URLs are never stored, logged or shown: a mirror's password in
`TODESKTOP_DOWNLOAD_BASE_URL`, an S3 endpoint's userinfo, any URL a library quotes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from releases.models import AuditEvent, Build, BuildFile, BuildStatus, ReleaseRequest
from releases.services.staging import build_stage
from selfhosted.redaction import text_redact, url_redact
from tests.fakes.todesktop_origin import FakeBuild, start_origin

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pa55-w0rd"


@pytest.fixture
def origin_behind_basic_auth(settings, fs_buckets):
    server = start_origin(FakeBuild())
    settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url.replace("://", f"://mirror:{PASSWORD}@")
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    yield server
    server.stop()


def api_get(*paths: str) -> str:
    user = User.objects.create_user("rita")
    user.groups.add(Group.objects.get(name="auditors"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).secret}")
    answers = [client.get(path) for path in paths]
    assert [answer.status_code for answer in answers] == [200] * len(paths)
    return "".join(answer.content.decode() for answer in answers)


@pytest.mark.django_db
def test_a_password_in_the_download_base_url_is_never_kept_or_shown(
    origin_behind_basic_auth, caplog
):
    fake = origin_behind_basic_auth.build
    exe = fake.layout["windows"]["nsis"]["x64"]
    origin_behind_basic_auth.fail(exe, times=1, status=503)  # a retry, logged
    build = Build.objects.create(build_id=fake.build_id, app_id=fake.app_id)
    release = ReleaseRequest.objects.create(build=build, payload={"buildId": fake.build_id})

    build_stage(release_id=release.pk)

    build.refresh_from_db()
    assert build.status in (BuildStatus.STAGED, BuildStatus.IN_REVIEW), build.failure_reason
    source = BuildFile.objects.get(build=build, name=exe).source_url
    assert source.startswith("http://mirror:***@127.0.0.1:")
    trail = json.dumps([[e.message, e.data] for e in AuditEvent.objects.all()])
    assert "staging " in trail and "mirror:***@" in trail
    shown = trail + api_get("/api/files/", "/api/events/") + caplog.text
    assert PASSWORD not in shown
    assert not BuildFile.objects.filter(source_url__contains=PASSWORD).exists()


@pytest.mark.slow  # starts manage.py in a subprocess
def test_every_log_line_is_masked_whichever_library_wrote_it(tmp_path):
    code = (
        "import django, logging; django.setup();"
        "logging.getLogger('botocore.endpoint').warning("
        "'Could not connect to the endpoint URL: %r', 'http://key:s3cr3t@minio:9000/bucket');"
        "logging.getLogger('releases').error('token https://ghp_t0ken@github.com/acme/x')"
    )
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "selfhosted.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    output = result.stdout + result.stderr
    assert "http://key:***@minio:9000/bucket" in output
    assert "https://***@github.com/acme/x" in output
    assert "s3cr3t" not in output and "ghp_t0ken" not in output


@pytest.mark.parametrize(
    "url, shown",
    [
        ("https://user:pw@host/a?b=1", "https://user:***@host/a?b=1"),
        ("https://token@host/a", "https://***@host/a"),
        ("https://user:p@ss@host:8443/", "https://user:***@host:8443/"),
        ("https://host/a", "https://host/a"),
    ],
)
def test_url_redact(url, shown):
    assert url_redact(url) == shown


def test_url_redact_can_hide_a_signed_query():
    assert url_redact("https://cdn/a.exe?X-Amz-Signature=abc", keep_query=False) == (
        "https://cdn/a.exe?…"
    )


def test_text_redact_masks_every_url_in_a_message():
    text = "failed: postgres://app:pw1@db/x then redis://:pw2@cache:6379/0 and sqlite:///a.db"
    assert text_redact(text) == (
        "failed: postgres://app:***@db/x then redis://:***@cache:6379/0 and sqlite:///a.db"
    )
