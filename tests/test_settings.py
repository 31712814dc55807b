"""A wrong configuration value stops start-up with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def start(tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "STORAGE_BACKEND")}
    clean.update({"DATA_DIR": str(tmp_path), **env})
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=clean, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DATABASE_URL": "nonsense://x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgres://u@h:notaport/db"}, "DATABASE_URL"),
        ({"STORAGE_BACKEND": "ftp"}, "STORAGE_BACKEND"),
        ({"STORAGE_BACKEND": "s3", "STAGING_BUCKET": ""}, "STAGING_BUCKET"),
        ({"STORAGE_BACKEND": "s3", "PRODUCTION_BUCKET": " "}, "PRODUCTION_BUCKET"),
        ({"STAGING_BUCKET": "same", "PRODUCTION_BUCKET": "same"}, "PRODUCTION_BUCKET"),
        ({"STORAGE_BACKEND": "s3", "AWS_S3_ENDPOINT_URL": "minio:9000"}, "AWS_S3_ENDPOINT_URL"),
        ({"PORT": "eighty"}, "PORT"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"CELERY_BROKER_URL": "localhost"}, "CELERY_BROKER_URL"),
        ({"REVIEW_BACKEND": "gitlab"}, "REVIEW_BACKEND"),
        ({"REVIEW_BACKEND": "github", "GITHUB_TOKEN": ""}, "REVIEW_BACKEND"),
        ({"REQUIRED_APPROVALS": "0"}, "REQUIRED_APPROVALS"),
        ({"TODESKTOP_DOWNLOAD_BASE_URL": "download.todesktop.com"}, "TODESKTOP_DOWNLOAD_BASE_URL"),
    ],
)
def test_a_wrong_value_stops_start_up_with_one_line_naming_it(tmp_path, env, variable):
    result = start(tmp_path, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {variable}: ")


def test_defaults_start_with_sqlite_and_filesystem_buckets_and_keep_the_generated_key(tmp_path):
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.STORAGE_BACKEND, s.REVIEW_BACKEND,"
        " s.CELERY_BROKER_URL.split(':')[0], s.SECRET_KEY)"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DATABASE_URL",
            "STORAGE_BACKEND",
            "SECRET_KEY",
            "CELERY_BROKER_URL",
            "REVIEW_BACKEND",
        )
    }
    env.update({"DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "selfhosted.settings"})
    run = [sys.executable, "-c", f"import django; django.setup(); {code}"]
    first = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    engine, backend, review, broker, key = first.stdout.split()
    assert (engine, backend, review, broker) == (
        "django.db.backends.sqlite3",
        "filesystem",
        "admin",
        "sqla+sqlite",
    )
    assert (tmp_path / "secret_key").read_text().strip() == key
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    second = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert second.stdout.split()[-1] == key


def test_postgres_comes_from_database_url(tmp_path, settings):
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
