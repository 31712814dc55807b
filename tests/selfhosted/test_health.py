"""/healthz reports the database, the broker and both buckets: for real (a publish, a look at
the bucket), without repairing anything, and without configuration details for anonymous
callers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.buckets_support import s3_storages

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
    settings.METRICS_TOKEN = "health-details"
    s3_buckets.client().delete_bucket(Bucket=settings.PRODUCTION_BUCKET)
    answer = client.get("/healthz", headers={"Authorization": "Bearer health-details"})
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["staging_bucket"]["ok"] is True
    assert checks["production_bucket"]["ok"] is False
    assert "NoSuchBucket" in checks["production_bucket"]["error"]


@pytest.mark.slow  # runs Django in a subprocess
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
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["503", "False"], result.stderr


def test_other_methods_are_refused(client):
    assert client.post("/healthz").status_code == 405


def test_a_healthy_broker_check_publishes_and_leaves_nothing_queued(client, fs_buckets, settings):
    queue = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    answer = client.get("/healthz")

    assert answer.json()["checks"]["broker"]["ok"] is True
    assert queue.llen("healthz") == 0


def test_a_missing_sqlite_broker_file_fails_and_is_not_created(
    client, fs_buckets, settings, tmp_path
):
    broker = tmp_path / "broker.sqlite3"
    settings.CELERY_BROKER_URL = f"sqla+sqlite:///{broker}"

    answer = client.get("/healthz")

    assert answer.status_code == 503 and answer.json()["checks"]["broker"]["ok"] is False
    assert not broker.exists()


@pytest.fixture
def read_only_broker(tmp_path, settings):
    """An embedded broker file that cannot be written (chattr +i as root, who ignores modes)."""
    broker = tmp_path / "ro" / "broker.sqlite3"
    broker.parent.mkdir()
    url = f"sqla+sqlite:///{broker}"
    code = f"from kombu import Connection; Connection({url!r}).SimpleQueue('setup').put(1)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    immutable = os.geteuid() == 0 and shutil.which("chattr")
    if immutable:
        subprocess.run(["chattr", "+i", str(broker)], check=True)
    else:
        broker.chmod(0o444)
        broker.parent.chmod(0o555)
    settings.CELERY_BROKER_URL = url
    yield broker
    if immutable:
        subprocess.run(["chattr", "-i", str(broker)], check=True)
    else:
        broker.parent.chmod(0o755)
        broker.chmod(0o644)


@pytest.mark.slow  # prepares the broker file in a subprocess
def test_a_read_only_sqlite_broker_file_fails(client, fs_buckets, read_only_broker):
    answer = client.get("/healthz")

    assert answer.status_code == 503 and answer.json()["checks"]["broker"]["ok"] is False


def test_a_vanished_bucket_directory_fails_and_is_not_recreated(client, fs_buckets, settings):
    production = settings.BUCKETS_DIR / settings.PRODUCTION_BUCKET
    shutil.rmtree(production)

    answer = client.get("/healthz")

    assert answer.status_code == 503
    assert answer.json()["checks"]["production_bucket"]["ok"] is False
    assert not production.exists()


@pytest.fixture
def unreachable_s3_with_credentials(s3_buckets, settings):
    s3_storages(settings, "http://minio-user:s3cr3t-pw@127.0.0.1:9/")


def test_the_anonymous_answer_carries_no_configuration(client, unreachable_s3_with_credentials):
    settings_words = ["s3cr3t", "minio-user", "127.0.0.1:9", "desktop-app-distributables"]

    answer = client.get("/healthz")

    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["production_bucket"] == {"ok": False}
    assert all(set(check) == {"ok"} for check in checks.values())
    assert not [word for word in settings_words if word in answer.content.decode()]


def test_details_need_the_metrics_token_and_hide_url_credentials(
    client, unreachable_s3_with_credentials, settings
):
    settings.METRICS_TOKEN = "health-details"

    wrong = client.get("/healthz", headers={"Authorization": "Bearer guess"})
    right = client.get("/healthz", headers={"Authorization": "Bearer health-details"})

    assert "error" not in json.dumps(wrong.json())
    error = right.json()["checks"]["production_bucket"]["error"]
    assert "127.0.0.1:9" in error or "no answer" in error
    assert "s3cr3t" not in right.content.decode()


def test_details_are_shown_to_staff(client, fs_buckets, settings, django_user_model):
    shutil.rmtree(settings.BUCKETS_DIR / settings.PRODUCTION_BUCKET)
    staff = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    client.force_login(staff)

    answer = client.get("/healthz")

    assert "bucket directory is missing" in answer.json()["checks"]["production_bucket"]["error"]


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers (a wedged Redis)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for sock in accepted:
        sock.close()
    listener.close()


@pytest.mark.slow  # waits out the 5 s check timeout six times
def test_a_broker_that_never_answers_is_a_failed_check_within_the_timeout(
    client, fs_buckets, settings, silent_server
):
    """The broker accepts the connection and then says nothing: every /healthz answers within
    the check timeout, with the broker failed, and the checks that work keep saying so (a
    wedged check never takes the place of the others)."""
    import time

    from selfhosted import health

    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_server}/0"
    settings.METRICS_TOKEN = "t"
    for _ in range(6):  # more than there are threads to run checks on
        started = time.monotonic()
        answer = client.get("/healthz", HTTP_AUTHORIZATION="Bearer t")
        took = time.monotonic() - started
        assert took < health.CHECK_TIMEOUT_SECONDS + 2, took
        assert answer.status_code == 503
        checks = answer.json()["checks"]
        assert checks["broker"]["ok"] is False
        others = {name: check["ok"] for name, check in checks.items() if name != "broker"}
        assert all(others.values()), checks


def test_a_database_query_stuck_behind_a_lock_fails_its_check_instead_of_hanging(
    client, fs_buckets, settings
):
    """A migration (or anyone) holds an exclusive lock on the audit table: the checks that
    read it fail within their statement timeout, the server itself is reported up, and the
    answer comes well within the load balancer's patience."""
    import time

    import psycopg
    from django.db import connection

    from releases.models import AuditEvent
    from selfhosted import health

    assert connection.vendor == "postgresql"  # the suite runs on PostgreSQL (pyproject.toml)
    settings.METRICS_TOKEN = "t"
    params = connection.get_connection_params()
    with psycopg.connect(**params) as locker:
        locker.execute("SET lock_timeout = '3s'")
        locker.execute(f'LOCK TABLE "{AuditEvent._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
        started = time.monotonic()
        answer = client.get("/healthz", HTTP_AUTHORIZATION="Bearer t")
        took = time.monotonic() - started
        locker.rollback()
    assert took < health.CHECK_TIMEOUT_SECONDS, took
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["desired_state"]["ok"] is False
    assert "statement timeout" in checks["desired_state"]["error"]
    # The lock gone, the same connection answers again: nothing was left aborted.
    assert client.get("/healthz").json()["checks"]["desired_state"]["ok"] is True


@pytest.mark.slow  # runs Django in a subprocess, waits out the connect timeout
def test_a_database_server_that_never_answers_fails_the_check_within_the_connect_timeout(
    tmp_path, silent_server
):
    """The address accepts connections and then says nothing (a wedged server, a proxy in
    front of a dead one): the connection attempt gives up after the 5 s default instead of
    holding the request for as long as TCP would."""
    code = (
        "import time, django; django.setup();"
        "from django.test import Client;"
        "started = time.monotonic();"
        "r = Client(HTTP_HOST='localhost').get('/healthz');"
        "print(r.status_code, r.json()['checks']['database']['ok'], time.monotonic() - started)"
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{silent_server}/none",
        "DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "selfhosted.settings",
    }
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=90
    )
    status, ok, took = result.stdout.split()
    assert (status, ok) == ("503", "False"), result.stderr
    assert float(took) < 9, took  # one attempt: the other database checks are not run
