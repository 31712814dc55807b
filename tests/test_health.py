"""/healthz reports the database, the broker and both buckets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db


def test_it_answers_200_when_everything_is_reachable(client, fs_buckets):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) >= {"database", "broker", "staging_bucket", "production_bucket"}
    assert all(check["ok"] for check in body["checks"].values())
    assert answer["Cache-Control"] == "no-store"


def test_it_answers_503_naming_an_unreachable_broker(client, fs_buckets, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    answer = client.get("/healthz")
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["broker"]["ok"] is False
    assert checks["database"]["ok"] is True


def test_it_answers_503_when_a_bucket_does_not_exist_on_s3(client, s3_buckets, settings):
    s3_buckets.client().delete_bucket(Bucket=settings.PRODUCTION_BUCKET)
    answer = client.get("/healthz")
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["staging_bucket"]["ok"] is True
    assert checks["production_bucket"]["ok"] is False
    assert "NoSuchBucket" in checks["production_bucket"]["error"]


def test_it_answers_503_when_the_database_is_down(tmp_path):
    code = (
        "import django; django.setup();"
        "from django.test import Client;"
        "r = Client(HTTP_HOST='localhost').get('/healthz');"
        "print(r.status_code, r.json()['checks']['database']['ok'])"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/none",
        "DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "selfhosted.settings",
    }
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["503", "False"], result.stderr


def test_other_methods_are_refused(client):
    assert client.post("/healthz").status_code == 405
