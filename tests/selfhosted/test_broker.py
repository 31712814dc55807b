"""The embedded broker's file stops growing: the sweep drops what kombu has delivered and
keeps what it has not."""

from __future__ import annotations

import sqlite3

import pytest
from kombu import Connection

from releases import tasks
from selfhosted.broker import embedded_broker_sweep

PAYLOAD = "x" * 4096


@pytest.fixture
def embedded(tmp_path, settings):
    broker = tmp_path / "broker.sqlite3"
    settings.CELERY_BROKER_URL = f"sqla+sqlite:///{broker}"
    with Connection(settings.CELERY_BROKER_URL) as conn:
        yield conn, broker


def _deliver(conn, count: int) -> None:
    queue = conn.SimpleQueue("sweep-test")
    for index in range(count):
        queue.put({"n": index, "pad": PAYLOAD})
    for _ in range(count):
        queue.get(timeout=5).ack()
    queue.close()


def _rows(broker) -> list[tuple[int, int]]:
    with sqlite3.connect(broker) as db:
        return db.execute("SELECT id, visible FROM kombu_message ORDER BY id").fetchall()


def test_delivered_messages_are_removed_and_pending_ones_kept(embedded):
    conn, broker = embedded
    _deliver(conn, 3)
    pending = conn.SimpleQueue("sweep-test")
    pending.put({"still": "queued"})
    assert [visible for _id, visible in _rows(broker)] == [0, 0, 0, 1]

    tasks.broker_sweep.apply().get()  # as beat runs it

    assert [visible for _id, visible in _rows(broker)] == [1]
    assert pending.get(timeout=5).payload == {"still": "queued"}
    pending.close()


def test_the_file_stops_growing_when_swept_between_batches(embedded):
    conn, broker = embedded
    _deliver(conn, 300)
    assert embedded_broker_sweep() == 300
    size_after_one = broker.stat().st_size
    for _ in range(3):
        _deliver(conn, 300)
        assert embedded_broker_sweep() == 300
    # Freed pages are reused: three more batches of 1.2 MB leave the file where it was
    # (without the sweep it grows by each batch).
    assert broker.stat().st_size <= size_after_one * 1.1


def test_the_sweep_never_creates_a_missing_file_and_ignores_redis(tmp_path, settings):
    missing = tmp_path / "none" / "broker.sqlite3"
    settings.CELERY_BROKER_URL = f"sqla+sqlite:///{missing}"
    assert embedded_broker_sweep() == 0
    assert not missing.exists() and not missing.parent.exists()
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    assert embedded_broker_sweep() == 0


def test_beat_sweeps_only_an_embedded_broker():
    import importlib

    from django.test import override_settings

    from selfhosted import celeryconfig

    try:
        with override_settings(CELERY_BROKER_URL="sqla+sqlite:////tmp/x/broker.sqlite3"):
            embedded = importlib.reload(celeryconfig).beat_schedule
        with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/0"):
            on_redis = importlib.reload(celeryconfig).beat_schedule
    finally:
        importlib.reload(celeryconfig)
    assert embedded["broker-sweep"]["task"] == "releases.tasks.broker_sweep"
    assert "broker-sweep" not in on_redis
