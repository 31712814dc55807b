"""/metrics: Prometheus gauges, optionally behind a bearer token."""

from __future__ import annotations

import pytest
import redis

from tests.factories import make_build

pytestmark = pytest.mark.django_db


def test_it_counts_builds_by_status_and_queued_tasks(client, settings):
    make_build(status="failed")
    make_build(status="failed")
    make_build(status="live")
    queue = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue.delete("staging")
    queue.rpush("staging", b"{}", b"{}", b"{}")
    try:
        answer = client.get("/metrics")
    finally:
        queue.delete("staging")
    assert answer.status_code == 200
    text = answer.content.decode()
    assert 'releases_builds{status="failed"} 2.0' in text
    assert 'releases_builds{status="live"} 1.0' in text
    assert 'releases_builds{status="staging"} 0.0' in text
    assert 'releases_queue_length{queue="staging"} 3.0' in text


def test_it_needs_the_bearer_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
