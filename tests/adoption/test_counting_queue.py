"""Polls wait in a queue for the flusher (adoption/counting.py): the queue stays bounded
whatever the traffic, and nothing queued is lost or counted twice."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from datasketches import hll_sketch
from django.db import DatabaseError, connection

from adoption import counting
from adoption.batch import Batch
from adoption.counting import MAX_PENDING_POLLS, count_feed, discard_pending, flush_now
from adoption.models import AdoptionCount, AdoptionSketch
from adoption.services import adoption_flush

pytestmark = pytest.mark.django_db
POLL = {"REQUEST_METHOD": "GET"}


@pytest.fixture(autouse=True)
def counting_on(settings):
    settings.ADOPTION_COUNTING = True
    discard_pending()
    yield
    discard_pending()


def poll(staging_id: str | None = None) -> None:
    meta = {**POLL, "HTTP_X_USER_STAGING_ID": staging_id} if staging_id else POLL
    count_feed(meta, path="latest-mac.yml", key="latest-mac-build-b7.yml", status=200)


def polls_counted() -> int:
    rows = AdoptionCount.objects.filter(metric="poll", build_id="b7", platform="mac")
    return sum(row.count for row in rows)


def test_the_queue_never_holds_more_than_its_bound():
    for _ in range(MAX_PENDING_POLLS + 10):
        poll()
    assert len(counting._counter.polls) <= MAX_PENDING_POLLS
    flush_now()
    assert polls_counted() == MAX_PENDING_POLLS + 10
    assert len(counting._counter.polls) == 0


def test_install_ids_reach_the_sketch_only_hashed_and_only_when_flushed():
    ids = [str(uuid.uuid4()) for _ in range(40)]
    for staging_id in ids * 3:
        poll(staging_id)
    poll("not-a-uuid")
    assert AdoptionSketch.objects.count() == 0  # nothing written before the flush
    flush_now()
    assert polls_counted() == 121
    [row] = AdoptionSketch.objects.filter(build_id="b7", platform="mac")
    assert round(hll_sketch.deserialize(bytes(row.sketch)).get_estimate()) == 40
    assert all(staging_id.encode() not in bytes(row.sketch) for staging_id in ids)


def test_discarding_forgets_the_queued_polls():
    poll()
    discard_pending()
    flush_now()
    assert polls_counted() == 0


@pytest.mark.django_db(transaction=True)  # the other threads' connections see the rows
def test_requests_folding_past_the_bound_and_the_flusher_lose_nothing():
    errors: list[BaseException] = []

    def requests_thread() -> None:
        try:
            for _ in range(MAX_PENDING_POLLS // 2 + 5_000):
                poll()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    def flusher_thread(stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                flush_now()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    stop = threading.Event()
    flusher = threading.Thread(target=flusher_thread, args=(stop,))
    senders = [threading.Thread(target=requests_thread) for _ in range(4)]
    flusher.start()
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    stop.set()
    flusher.join()
    flush_now()
    assert errors == []
    assert polls_counted() == 4 * (MAX_PENDING_POLLS // 2 + 5_000)


def test_a_flush_is_all_or_nothing():
    hour = 3600 * 490_000
    sketch = hll_sketch(12)
    sketch.update(42)
    batch = Batch()
    batch.add(hour, "mac", "b7", "poll")
    # A sketch the database refuses (its platform is too long for the column): the flush fails
    # at its last write, and the poll counted before it must not be left behind.
    batch.sketches[(hour, "x" * 40, "b7")] = sketch
    with pytest.raises(DatabaseError):
        adoption_flush(batch=batch)
    assert AdoptionCount.objects.count() == 0


def test_an_unreadable_sketch_row_is_replaced_and_the_counts_kept():
    hour = 3600 * 490_000
    AdoptionSketch.objects.create(
        hour=datetime.fromtimestamp(hour, tz=UTC), platform="mac", build_id="b7", sketch=b"junk"
    )
    sketch = hll_sketch(12)
    sketch.update(42)
    batch = Batch()
    batch.add(hour, "mac", "b7", "poll")
    batch.sketches[(hour, "mac", "b7")] = sketch
    adoption_flush(batch=batch)
    assert polls_counted() == 1
    [row] = AdoptionSketch.objects.all()
    assert round(hll_sketch.deserialize(bytes(row.sketch)).get_estimate()) == 1
