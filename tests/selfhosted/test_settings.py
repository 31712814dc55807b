"""A wrong configuration value stops start-up with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "STORAGE_BACKEND")}
    clean.update({"DATA_DIR": str(tmp_path), **env})
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=clean, capture_output=True, text=True
    )


@pytest.mark.slow  # starts manage.py in a subprocess
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
        ({"FEED_METADATA_CHECK_SECONDS": "-1"}, "FEED_METADATA_CHECK_SECONDS"),
        ({"FEED_METADATA_CHECK_SECONDS": "often"}, "FEED_METADATA_CHECK_SECONDS"),
        ({"REQUIRE_REVIEWED_HEAD": "sometimes"}, "REQUIRE_REVIEWED_HEAD"),
        ({"TODESKTOP_DOWNLOAD_BASE_URL": "download.todesktop.com"}, "TODESKTOP_DOWNLOAD_BASE_URL"),
        (
            {"TODESKTOP_DOWNLOAD_BASE_URL": "ftp://download.example.com"},
            "TODESKTOP_DOWNLOAD_BASE_URL",
        ),
        # Paths: what cannot be created, or exists as a file where a directory belongs.
        ({"DATA_DIR": "{file}"}, "DATA_DIR"),
        ({"DATA_DIR": "/sys/selfhosted-test"}, "DATA_DIR"),
        ({"DATA_DIR": "{file}/sub", "SECRET_KEY": "set"}, "DATA_DIR"),
        ({"DATABASE_URL": "sqlite:///{file}/db.sqlite3"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:////sys/selfhosted-test/db.sqlite3"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:///{tmp}"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:///{tmp}/db.sqlite3?timeout=soon"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:///{tmp}/db.sqlite3?transaction_mode=lazy"}, "DATABASE_URL"),
        (
            {"CELERY_BROKER_URL": "sqla+sqlite:////sys/selfhosted-test/b.sqlite3"},
            "CELERY_BROKER_URL",
        ),
        ({"CELERY_BROKER_URL": "sqla+sqlite:///{file}/broker.sqlite3"}, "CELERY_BROKER_URL"),
        ({"CELERY_BROKER_URL": "redsi://localhost:6379/0"}, "CELERY_BROKER_URL"),
        ({"CELERY_BROKER_URL": "redis://localhost:port/0"}, "CELERY_BROKER_URL"),
        ({"STATIC_ROOT": "{file}"}, "STATIC_ROOT"),
        # URLs: a scheme and a host, and a port that is a number.
        ({"GITHUB_API_URL": "api.github.com"}, "GITHUB_API_URL"),
        ({"GITHUB_API_URL": "https://ghe.example.com:api/v3"}, "GITHUB_API_URL"),
        ({"PUBLIC_BASE_URL": "releases.example.com"}, "PUBLIC_BASE_URL"),
        (
            {"CSRF_TRUSTED_ORIGINS": "https://ok.example.com,releases.example.com"},
            "CSRF_TRUSTED_ORIGINS",
        ),
        (
            {"STORAGE_BACKEND": "s3", "AWS_S3_ENDPOINT_URL": "http://minio:ninety"},
            "AWS_S3_ENDPOINT_URL",
        ),
        ({"CACHE_URL": "memcache"}, "CACHE_URL"),
        ({"CACHE_URL": "redis://localhost:notaport/1"}, "CACHE_URL"),
        ({"S3_REDIRECT": "yes"}, "S3_REDIRECT"),
        ({"S3_REDIRECT": "public"}, "S3_REDIRECT_PUBLIC_BASE_URL"),
        ({"S3_REDIRECT_PUBLIC_BASE_URL": "files.example.com"}, "S3_REDIRECT_PUBLIC_BASE_URL"),
        ({"S3_REDIRECT_EXPIRES_SECONDS": "0"}, "S3_REDIRECT_EXPIRES_SECONDS"),
        ({"S3_REDIRECT_EXPIRES_SECONDS": "soon"}, "S3_REDIRECT_EXPIRES_SECONDS"),
        ({"S3_REDIRECT_MIN_BYTES": "-1"}, "S3_REDIRECT_MIN_BYTES"),
    ],
)
def test_a_wrong_value_stops_start_up_with_one_line_naming_it(tmp_path, env, variable):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    env = {k: v.format(file=a_file, tmp=tmp_path) for k, v in env.items()}
    result = start(tmp_path, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {variable}: ")


@pytest.mark.slow  # starts manage.py in a subprocess
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


@pytest.mark.slow  # starts manage.py in a subprocess
def test_the_directories_of_the_sqlite_database_and_broker_are_created_like_data_dir(tmp_path):
    """`DATABASE_URL=sqlite:///<dir>/db.sqlite3` with a directory that does not exist yet."""
    database = tmp_path / "new" / "db" / "db.sqlite3"
    broker = tmp_path / "other" / "broker.sqlite3"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("STORAGE_BACKEND",)},
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{database}",
        "CELERY_BROKER_URL": f"sqla+sqlite:///{broker}",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert database.is_file()
    assert broker.parent.is_dir()


@pytest.mark.slow  # starts manage.py in a subprocess
def test_sqlite_is_opened_in_wal_mode_with_a_busy_timeout_and_immediate_transactions(tmp_path):
    code = (
        "from django.db import connection as c; c.ensure_connection();"
        "print(c.cursor().execute('PRAGMA journal_mode').fetchone()[0],"
        " c.cursor().execute('PRAGMA busy_timeout').fetchone()[0], c.transaction_mode)"
    )
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "DJANGO_SETTINGS_MODULE": "selfhosted.settings",
    }
    run = [sys.executable, "-c", f"import django; django.setup(); {code}"]
    done = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["wal", "20000", "IMMEDIATE"]
    env["DATABASE_URL"] += "?timeout=2.5"  # an operator's own busy timeout
    done = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["wal", "2500", "IMMEDIATE"]


@pytest.mark.slow  # starts manage.py in a subprocess
def test_settings_create_no_directory_that_nothing_stores_in(tmp_path):
    """With PostgreSQL, Redis and a key given (a container image's build step, as root), loading
    the settings leaves DATA_DIR alone: a root-owned directory would end up in the volume."""
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "SECRET_KEY": "build-only"}
    env.pop("STORAGE_BACKEND", None)  # filesystem buckets: their directories come on first use
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.slow  # starts manage.py in a subprocess
def test_secure_cookies_and_hsts_follow_the_environment(tmp_path):
    code = (
        "import django; django.setup();"
        "from django.test import Client;"
        "r = Client(HTTP_HOST='localhost').get('/admin/login/', secure=True);"
        "print(r.cookies['csrftoken']['secure'] or '-', r.headers.get('Strict-Transport-Security'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "selfhosted.settings"})
    run = [sys.executable, "-c", code]
    plain = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True)
    env.update({"SECURE_COOKIES": "true", "SECURE_HSTS_SECONDS": "31536000"})
    secure = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True)

    assert plain.stdout.split() == ["-", "None"], plain.stderr
    assert secure.stdout.split() == ["True", "max-age=31536000"], secure.stderr
