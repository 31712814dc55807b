"""Counting feed and download traffic in memory, flushed in batches (README: Adoption).

The feed calls `count_feed` once per request and the download links `count_link`: a poll is
appended to a queue (no lock, no hashing on the request's path); a download a dict update under
a lock; never any I/O. The flusher folds the queued polls into the batch — counts, and for each
install id one keyed hash and one HyperLogLog update — before it writes. A daemon thread per
process hands the batch to `adoption.services.adoption_flush` every `ADOPTION_FLUSH_SECONDS`,
and once more at exit.

The staging id is hashed with the current period's secret (BLAKE2b, keyed) before it touches
the sketch; neither it nor the client address is written anywhere, and the id stays in this
process's memory only until the next flush (at most MAX_PENDING_POLLS of them). A poll queued
just before the secret rotates is hashed with the new one.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from datasketches import hll_sketch
from django.conf import settings
from django.db import connection

from adoption.batch import LG_K, Batch
from adoption.services import adoption_flush, secret_for, secret_period, secret_period_end
from cdn.resolve import platform_of
from cdn.rollout import cohort_position

logger = logging.getLogger(__name__)

SERVED_BUILD_RE = re.compile(r"-build-([A-Za-z0-9_-]+)\.(?:yml|json)$")
# The platform a served file is for, from its extension (electron-builder's artifacts).
FILE_PLATFORMS = (
    ((".exe", ".msi", ".appx", ".nupkg"), "windows"),
    ((".dmg", ".zip", ".pkg"), "mac"),
    ((".appimage", ".deb", ".rpm", ".snap", ".tar.gz"), "linux"),
)
# 302: a full download handed to the bucket (S3_REDIRECT).
OK_STATUSES = (200, 206, 302, 304)


def platform_of_file(name: str) -> str:
    lower = name.lower().removesuffix(".blockmap")
    for suffixes, platform in FILE_PLATFORMS:
        if lower.endswith(suffixes):
            return platform
    return ""


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batch = Batch()
        # Polls not yet folded into the batch: (hour, platform, build, staging id or None).
        # deque.append and popleft are atomic, so a request appends without taking the lock.
        self.polls: deque[tuple[int, str, str, str | None]] = deque()
        self.current: tuple[int, bytes] = (0, b"")  # (period, key)
        self.current_until = 0.0  # when the current period ends (epoch seconds)
        self.started = False

    def forked(self) -> None:
        # gunicorn forks its workers after importing the app: each counts and flushes alone.
        self.lock = threading.Lock()
        self.batch = Batch()
        self.polls = deque()
        self.started = False

    def ensure_flusher(self) -> None:
        if not self.started:
            self.started = True
            thread = threading.Thread(target=_flush_loop, name="adoption-flush", daemon=True)
            thread.start()

    def secret(self, now: float) -> tuple[int, bytes]:
        if now >= self.current_until:
            period = secret_period(now)
            self.current = (period, secret_for(period))
            self.current_until = secret_period_end(period)
        return self.current

    def fold(self) -> None:
        """Move the pending polls into the batch: count each, and hash each install id with
        the period's secret into its hour's sketch (the id itself goes no further)."""
        polls = self.polls
        if not polls:
            return
        period, secret = self.secret(time.time())
        with self.lock:  # one fold at a time: the flusher, or a request past the bound
            pending = len(polls)
            batch = self.batch
            if batch.period != period:
                batch.sketches.clear()  # a rotation mid-batch: the old period's few are dropped
                batch.period = period
            counts, sketches = batch.counts, batch.sketches
            for _ in range(pending):
                hour, platform, build, staging_id = polls.popleft()
                key = (hour, platform, build, "poll", "")
                counts[key] = counts.get(key, 0) + 1
                if staging_id is None or cohort_position(staging_id) is None:
                    continue
                keyed = hashlib.blake2b(staging_id.lower().encode(), key=secret, digest_size=8)
                sketch = sketches.get(key[:3])
                if sketch is None:
                    sketch = sketches[key[:3]] = hll_sketch(LG_K)
                sketch.update(int.from_bytes(keyed.digest(), "big", signed=True))  # int64

    def take(self) -> Batch:
        self.fold()
        with self.lock:
            batch, self.batch = self.batch, Batch()
        return batch


_counter = _Counter()
os.register_at_fork(after_in_child=_counter.forked)
# Polls waiting for the flusher beyond this are folded by the request that adds one, so memory
# stays bounded whatever the flush interval and the traffic.
MAX_PENDING_POLLS = 50_000


def count_feed(meta: Mapping[str, Any], *, path: str, key: str, status: int) -> None:
    """Count one feed answer: a poll of a channel manifest, or a file served (whole or ranged).
    Versioned and pinned manifests, control files and HEAD requests are not counted. `meta`:
    the request's WSGI environ (Django's `request.META`)."""
    if not settings.ADOPTION_COUNTING or status not in OK_STATUSES:
        return
    if meta.get("REQUEST_METHOD", "").upper() != "GET":
        return
    hour = int(time.time()) // 3600 * 3600
    name = key.rsplit("/", 1)[-1]
    if name.endswith((".yml", ".json")):
        target = _poll_target(path, name)
        if target is not None:
            staging_id = meta.get("HTTP_X_USER_STAGING_ID")
            _counter.polls.append((hour, *target, staging_id))
            _counter.ensure_flusher()
            if len(_counter.polls) > MAX_PENDING_POLLS:
                _counter.fold()
        return
    if status == 304:
        return
    metric = "differential_download" if status == 206 else "full_download"
    with _counter.lock:
        _counter.ensure_flusher()
        _counter.batch.add(hour, platform_of_file(name), "", metric, name)


@functools.lru_cache(maxsize=1024)
def _poll_target(path: str, name: str) -> tuple[str, str] | None:
    """(platform, build) of a poll of channel manifest `path` answered by manifest `name`; None
    for a versioned or pinned manifest, or a name without a build id. The few hot pairs are kept."""
    served = SERVED_BUILD_RE.search(name)
    platform = platform_of(path)
    if served is None or platform is None:
        return None
    return platform, served[1]


def count_link(*, platform: str, artifact: str) -> None:
    """Count one download-link answer that served (or described) a file."""
    if not settings.ADOPTION_COUNTING:
        return
    hour = int(time.time()) // 3600 * 3600
    with _counter.lock:
        _counter.ensure_flusher()
        _counter.batch.add(hour, platform, "", "link_hit", artifact)


def pending_polls() -> int:
    """How many polls wait for the flusher in this process."""
    return len(_counter.polls)


def discard_pending() -> None:
    """Forget what this process counted since its last flush."""
    _counter.polls.clear()
    _counter.take()


def flush_now() -> None:
    """Hand this process's batch to the database now (the flush thread does it periodically)."""
    batch = _counter.take()
    if batch.counts or batch.sketches:
        adoption_flush(batch=batch)


def _flush_loop() -> None:
    while True:
        time.sleep(settings.ADOPTION_FLUSH_SECONDS)
        _in_os_thread(_flush_once)


def _flush_once() -> None:
    try:
        flush_now()
    except Exception:  # the database may be away for a while; counting goes on
        logger.exception("adoption flush failed; its counts are lost")
    finally:
        connection.close()  # this thread's own: never left open between flushes


def _in_os_thread(work) -> None:
    """Run `work` where its database calls cannot stall the requests. Under gunicorn's gevent
    worker, `threading` is patched and the flush loop is a greenlet on the requests' event loop:
    a SQLite or PostgreSQL call blocks inside C and would pause every connection of the process,
    so the flush goes to gevent's pool of real threads. Elsewhere this already is a thread."""
    if "gevent" in sys.modules:
        from gevent import get_hub, monkey

        if monkey.is_module_patched("threading"):
            get_hub().threadpool.spawn(work).get()
            return
    work()


atexit.register(lambda: _safe_flush())


def _safe_flush() -> None:
    try:
        flush_now()
    except Exception:  # at exit: nothing left to tell
        logger.warning("adoption flush at exit failed", exc_info=True)
