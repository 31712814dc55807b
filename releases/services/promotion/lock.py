"""One promotion at a time, across processes and machines (docs/promotion.md).

PostgreSQL: a session-level advisory lock (`releases.locks`). It lives in the database, not in a
worker, so every worker on every machine sees it; and PostgreSQL drops it the moment the
holder's connection closes, so a worker killed mid-promotion (SIGKILL, OOM, a lost machine)
never leaves a stale lock behind, and the re-delivered task resumes at once.

SQLite (`make run`, one machine): an exclusive `flock` on a file next to the database, with the
same property — the kernel releases it when the holding process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import IO, Any

from django.conf import settings
from django.db import connection

from releases.locks import advisory_try_lock, advisory_unlock

logger = logging.getLogger(__name__)

# An arbitrary constant that names "the promotion lock" among advisory locks (signed 64-bit).
ADVISORY_LOCK_KEY = 0x50524F4D4F5445  # "PROMOTE"
POLL_SECONDS = 0.2


class PromotionLockTimeout(Exception):
    """Another promotion held the lock for longer than we were willing to wait."""


@contextlib.contextmanager
def promotion_lock(*, timeout: float = 3600.0) -> Iterator[None]:
    """Hold the promotion lock for the block; wait (up to `timeout`) while another holds it."""
    if connection.vendor == "postgresql":
        with _advisory_lock(timeout=timeout):
            yield
    else:
        with _file_lock(timeout=timeout):
            yield


@contextlib.contextmanager
def _advisory_lock(*, timeout: float) -> Iterator[None]:
    take = partial(advisory_try_lock, ADVISORY_LOCK_KEY)
    with _held(take, partial(advisory_unlock, ADVISORY_LOCK_KEY), timeout=timeout):
        yield


@contextlib.contextmanager
def _file_lock(*, timeout: float) -> Iterator[None]:
    path = settings.DATA_DIR / "promotion.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        release = partial(fcntl.flock, handle.fileno(), fcntl.LOCK_UN)
        with _held(partial(_flock_try, handle), release, timeout=timeout):
            yield


def _flock_try(handle: IO) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def _held(
    take: Callable[[], bool], release: Callable[[], Any], *, timeout: float
) -> Iterator[None]:
    # Polling a non-blocking attempt instead of blocking in the lock keeps the wait bounded and
    # lets a worker's time limit interrupt it.
    deadline = time.monotonic() + timeout
    waited = False
    while not take():
        waited = waited or _log_wait()
        if time.monotonic() > deadline:
            raise PromotionLockTimeout("another promotion is still running")
        time.sleep(POLL_SECONDS)
    logger.info("promotion lock acquired at %.6f by pid %d", time.time(), os.getpid())
    try:
        yield
    finally:
        logger.info("promotion lock released at %.6f by pid %d", time.time(), os.getpid())
        release()


def _log_wait() -> bool:
    logger.info("promotion lock busy at %.6f; pid %d waits", time.time(), os.getpid())
    return True
