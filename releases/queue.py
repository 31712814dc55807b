"""Queueing a Celery task after the transaction commits, with one broker-failure policy.

Every service that queues work calls `enqueue_after_commit`:

- **After commit.** The worker must see what the transaction wrote, and a rolled-back
  transaction queues nothing. Outside a transaction the task is queued at once.
- **By name.** Tasks are named (`releases.tasks.<name>`) and looked up in the Celery app's
  registry, so services never import `releases.tasks` (which imports them).
- **A broker failure never raises into the caller.** The transaction has committed, so the
  request or the step that wrote it has succeeded: it is logged, then handed to `on_failure`
  when the caller needs it recorded (staging marks its release failed, with the reason, for a
  release manager to retry). Work with no `on_failure` is caught up by a periodic task
  (reconcile, the notification sweep) or retried from the admin.

A task that queues its next step (a sweep, a fan-out) calls `.delay()` itself: a broker failure
there fails that task, and Celery retries it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from selfhosted.celery import app

logger = logging.getLogger(__name__)


def enqueue_after_commit(
    task: str,
    *args,
    on_failure: Callable[[Exception], None] | None = None,
    **kwargs,
) -> None:
    """Queue the task named `task` with these arguments once the transaction commits."""

    def enqueue() -> None:
        try:
            app.tasks[task].apply_async(args, kwargs)
        except Exception as exc:
            logger.exception("could not queue %s%r", task, args)
            if on_failure is not None:
                on_failure(exc)

    # Django logs a robust callback's failure (one in `on_failure` itself) by its __qualname__;
    # `task` says what the callback queues (tests that capture the callbacks read it).
    enqueue.__qualname__ = f"enqueue_after_commit({task})"
    enqueue.task = task
    transaction.on_commit(enqueue, robust=True)
