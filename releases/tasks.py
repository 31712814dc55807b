"""Celery tasks: thin, idempotent, take ids (DESIGN habit 4)."""

from __future__ import annotations

import logging

from celery import Task, shared_task

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying (network, 5xx, throttling)."""


class ReliableTask(Task):
    """Default for our tasks: retry transient errors with exponential backoff and a cap."""

    autoretry_for = (TransientError, ConnectionError, TimeoutError)
    retry_backoff = 5
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = 8
    acks_late = True
    reject_on_worker_lost = True


@shared_task(base=ReliableTask, name="releases.tasks.reconcile")
def reconcile() -> None:
    """Periodic reconcile of production with the desired state (implemented with promotion)."""
    logger.info("reconcile: nothing to do yet")
