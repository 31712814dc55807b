"""Helpers for the release-webhook tests: signed bodies, settings, the real `staging` queue, a
broker that is down."""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
import redis

from releases.models import AuditEvent, Build, ReleaseRequest, WebhookDelivery

HMAC_KEY = "tests-todesktop-hmac-key"
FIXTURE = json.loads(
    (Path(__file__).parent / "data" / "todesktop-release-webhook.json").read_text()
)
APP_ID = FIXTURE["appId"]
BUILD_ID = FIXTURE["buildId"]
BASE_URL = "https://releases.example.com"
URL = "/new-release-webhook"
SIGNATURE = "X-ToDesktop-HMAC-SHA256"


def payload(**overrides: Any) -> dict[str, Any]:
    """The real webhook body of tests/data, with top-level fields replaced."""
    body = copy.deepcopy(FIXTURE)
    body.update(overrides)
    return body


def encode(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def sign(body: bytes, key: str = HMAC_KEY) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def post(client, body: Any, **headers: str):
    """POST a body signed with the test key (unless a signature header is given)."""
    raw = encode(body)
    headers = {SIGNATURE: sign(raw), **headers}
    return client.post(URL, data=raw, content_type="application/json", headers=headers)


def row_counts() -> dict[str, int]:
    return {
        "builds": Build.objects.count(),
        "releases": ReleaseRequest.objects.count(),
        "deliveries": WebhookDelivery.objects.count(),
        "events": AuditEvent.objects.count(),
    }


NO_ROWS = {"builds": 0, "releases": 0, "deliveries": 0, "events": 0}


class StagingQueue:
    """The `staging` queue as Redis holds it (kombu keeps a queue as a list of that name)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def clear(self) -> None:
        self.client.delete("staging")

    def __len__(self) -> int:
        return self.client.llen("staging")

    def pop(self) -> tuple[str, list]:
        """Take the oldest message off the queue, as a worker would: (task name, args)."""
        raw = self.client.rpop("staging")
        assert raw is not None, "the staging queue is empty"
        return self._decode(raw)

    def tasks(self) -> list[tuple[str, list]]:
        """(task name, args) of each queued message, oldest first."""
        return [self._decode(raw) for raw in reversed(self.client.lrange("staging", 0, -1))]

    @staticmethod
    def _decode(raw: bytes) -> tuple[str, list]:
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        return message["headers"]["task"], args


@pytest.fixture
def webhook_settings(settings):
    settings.WEBHOOK_HMAC_KEY = HMAC_KEY
    settings.TODESKTOP_APP_ID = APP_ID
    settings.PUBLIC_BASE_URL = BASE_URL
    settings.WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
    return settings


@pytest.fixture
def staging_queue():
    """Celery not eager: tasks go to the real broker (Redis), where the test counts them."""
    from selfhosted.celery import app

    if not app.conf.broker_url.startswith("redis://"):
        pytest.fail("these tests need CELERY_BROKER_URL=redis://… to observe the queue")
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    queue = StagingQueue(redis.Redis.from_url(app.conf.broker_url))
    queue.clear()
    yield queue
    queue.clear()
    app.conf.task_always_eager = eager


@contextlib.contextmanager
def broker_closed():
    """Celery's broker is a closed port until the block ends: publishing fails after Celery's
    own retries, and nothing is run in-process in its place."""
    from selfhosted.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    # broker_write_url: Celery lets CELERY_BROKER_URL from the environment win over broker_url.
    app.conf.broker_write_url = "redis://127.0.0.1:9/0"  # the discard port: nothing listens
    app._pool, app.amqp._producer_pool = None, None  # Celery caches the connection pools
    try:
        yield
    finally:
        app.conf.broker_write_url = None
        app.conf.task_always_eager = eager
        app._pool, app.amqp._producer_pool = None, None


@pytest.fixture
def broker_down():
    """The broker is down for the whole test (`broker_closed`)."""
    with broker_closed():
        yield
