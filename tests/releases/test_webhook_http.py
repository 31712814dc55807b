"""Both webhooks over real HTTP, against gunicorn started as `make run` starts it: a chunked
body is read to its end (and its signature checked over the real bytes), and a body that is
too large gets a 413 that the client actually reads, not a reset."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings
from django.test import RequestFactory

from releases.models import ReleaseRequest, WebhookDelivery
from releases.views.todesktop import release_webhook
from tests.fakes.s3_server import free_port
from tests.webhook_support import APP_ID, HMAC_KEY, SIGNATURE, URL, encode, payload, sign

ROOT = Path(__file__).resolve().parents[2]
GITHUB_SECRET = "tests-github-secret"
MiB = 1024 * 1024

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
    pytest.mark.slow,  # starts gunicorn
]


def _database_url() -> str:
    db = django_settings.DATABASES["default"]
    return (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory, django_db_setup):
    """gunicorn with the project's config file, as `make run` (runall) starts it, on the test
    database (tests here commit: transaction=True)."""
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "BIND_ADDRESS": "127.0.0.1",
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "WEBHOOK_HMAC_KEY": HMAC_KEY,
        "TODESKTOP_APP_ID": APP_ID,
        "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "WEB_CONCURRENCY": "1",
    }
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "selfhosted/gunicorn.conf.py", "selfhosted.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{port}{URL}", timeout=5)  # a 405: it serves
                break
            except requests.RequestException:
                time.sleep(0.2)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def pieces(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def github_headers(body: bytes, event: str = "ping") -> dict[str, str]:
    digest = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }


def test_a_chunked_release_webhook_is_read_whole_and_accepted(gunicorn, staging_queue):
    raw = encode(payload())
    answer = requests.post(
        f"http://127.0.0.1:{gunicorn}{URL}",
        data=pieces(raw, 100),  # a generator: requests sends Transfer-Encoding: chunked
        headers={SIGNATURE: sign(raw), "Content-Type": "application/json"},
        timeout=30,
    )

    assert answer.status_code == 202, answer.text
    assert bytes(WebhookDelivery.objects.get().body) == raw
    assert len(staging_queue) == 1


def test_a_chunked_body_signed_over_nothing_is_refused_by_its_signature(gunicorn):
    raw = encode(payload())
    answer = requests.post(
        f"http://127.0.0.1:{gunicorn}{URL}",
        data=pieces(raw, 100),
        headers={SIGNATURE: sign(b"")},
        timeout=30,
    )

    assert answer.status_code == 401 and "signature" in answer.json()["error"]
    assert not ReleaseRequest.objects.exists()


def test_a_chunked_github_delivery_is_read_whole(gunicorn):
    raw = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    answer = requests.post(
        f"http://127.0.0.1:{gunicorn}/github-webhook",
        data=pieces(raw, 10),
        headers=github_headers(raw),
        timeout=30,
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["detail"] == "pong"


NESTED_950 = b'{"a": ' + b"[" * 950 + b"]" * 950 + b"}"


def test_a_signed_release_body_nested_950_deep_is_a_400_not_a_500(gunicorn):
    raw = encode(payload())[:-1] + b', "x": ' + NESTED_950[6:]
    answer = requests.post(
        f"http://127.0.0.1:{gunicorn}{URL}", data=raw, headers={SIGNATURE: sign(raw)}, timeout=30
    )

    assert answer.status_code == 400 and "nested too deeply" in answer.json()["error"]
    assert not ReleaseRequest.objects.exists()


def test_a_signed_github_body_nested_950_deep_is_a_400_not_a_500(gunicorn):
    answer = requests.post(
        f"http://127.0.0.1:{gunicorn}/github-webhook",
        data=NESTED_950,
        headers=github_headers(NESTED_950, "pull_request"),
        timeout=30,
    )

    assert answer.status_code == 400 and "nested too deeply" in answer.json()["error"]
    assert not WebhookDelivery.objects.exists()


def paced_post(port: int, path: str, body: bytes, *, chunked: bool) -> tuple[int, bytes]:
    """POST `body` with Python's http.client, 64 KiB at a time with a short pause in between,
    as it arrives over a real network (on loopback the kernel would buffer it all at once)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest("POST", path)
    connection.putheader("Content-Type", "application/json")
    connection.putheader(SIGNATURE, "0" * 64)
    if chunked:
        connection.putheader("Transfer-Encoding", "chunked")
    else:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    for piece in pieces(body):
        connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
        time.sleep(0.01)
    if chunked:
        connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    status, text = response.status, response.read()
    connection.close()
    return status, text


@pytest.mark.parametrize("path", [URL, "/github-webhook"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_2_mb_body_gets_a_413_the_client_reads(gunicorn, path, chunked):
    status, text = paced_post(gunicorn, path, b"x" * (2 * MiB), chunked=chunked)

    assert status == 413
    assert "body larger than 1048576 bytes" in json.loads(text)["error"]
    assert not WebhookDelivery.objects.exists()


def test_a_body_without_length_on_a_server_that_cannot_delimit_it_is_a_411(settings):
    settings.WEBHOOK_HMAC_KEY, settings.TODESKTOP_APP_ID = HMAC_KEY, APP_ID
    request = RequestFactory().post(URL, encode(payload()), content_type="application/json")
    del request.META["CONTENT_LENGTH"]  # what Django's runserver hands over for a chunked body
    request.META["HTTP_TRANSFER_ENCODING"] = "chunked"

    answer = release_webhook(request)

    assert answer.status_code == 411
    assert "Content-Length" in json.loads(answer.content)["error"]
