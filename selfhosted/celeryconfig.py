"""Celery settings, derived from Django's (one source of truth: the environment)."""

from __future__ import annotations

from django.conf import settings
from kombu import Exchange, Queue

from selfhosted.broker import BROKER_SWEEP_INTERVAL_SECONDS, embedded_broker_file

broker_url = settings.CELERY_BROKER_URL
broker_connection_retry_on_startup = True
# Redis re-delivers an unacknowledged task after this long; it must exceed the longest task or
# a task still running would be handed to a second worker.
# (Only for Redis/SQS-style brokers: the embedded SQLAlchemy transport would hand it to the
# database engine.)
broker_transport_options = (
    {"visibility_timeout": settings.CELERY_VISIBILITY_TIMEOUT}
    if settings.CELERY_BROKER_URL.startswith(("redis", "rediss", "sqs"))
    else {}
)
if embedded_broker_file(settings.CELERY_BROKER_URL):
    from sqlalchemy.pool import NullPool  # SQLAlchemy carries only the embedded broker

    # The embedded broker's engine keeps no connection between two uses. A pooled SQLite
    # connection that once met the file unwritable stays read-only for good: after such an
    # outage beat failed every send ("attempt to write a readonly database") until its process
    # was restarted, so retention, recovery and reconcile silently stopped.
    broker_transport_options = {"poolclass": NullPool}
task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
task_eager_propagates = True
task_ignore_result = True
result_backend = None
# Acknowledged when the task finishes and given back when its worker dies, so a build is never
# half-done and forgotten.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
# Each queue has its own exchange and routing key, so a message reaches exactly one queue.
task_queues = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in ("staging", "promotion", "notify", "default")
)
task_default_queue = "default"
task_routes = {
    "releases.tasks.stage_*": {"queue": "staging"},
    "releases.tasks.staging_*": {"queue": "staging"},
    "releases.tasks.review_*": {"queue": "staging"},
    "releases.tasks.promote*": {"queue": "promotion"},
    "releases.tasks.reconcile*": {"queue": "promotion"},
    # The promotion worker holds the CDN's credentials; the notify worker the channels' secrets,
    # and keeps notifications moving while long staging runs fill the staging worker.
    "releases.tasks.cdn_purge*": {"queue": "promotion"},
    "releases.tasks.notify_*": {"queue": "notify"},
}
task_time_limit = max(settings.CELERY_VISIBILITY_TIMEOUT - 60, 60)
task_soft_time_limit = max(settings.CELERY_VISIBILITY_TIMEOUT - 120, 30)
worker_hijack_root_logger = False
worker_cancel_long_running_tasks_on_connection_loss = True
beat_schedule = {
    "reconcile": {
        "task": "releases.tasks.reconcile",
        "schedule": float(settings.RECONCILE_INTERVAL_SECONDS),
    },
    "staging-retention": {
        "task": "releases.tasks.staging_prune",
        "schedule": float(settings.STAGING_PRUNE_INTERVAL_SECONDS),
    },
    "staging-recover": {
        "task": "releases.tasks.staging_recover",
        "schedule": float(settings.STAGING_LEASE_SECONDS),
    },
    "notify-sweep": {"task": "releases.tasks.notify_sweep", "schedule": 60.0},
    "audit-check": {
        "task": "releases.tasks.audit_check",
        "schedule": float(settings.AUDIT_CHECK_INTERVAL_SECONDS),
    },
}
if embedded_broker_file(settings.CELERY_BROKER_URL):
    # kombu keeps every delivered message in the embedded broker's file (selfhosted/broker.py)
    beat_schedule["broker-sweep"] = {
        "task": "releases.tasks.broker_sweep",
        "schedule": BROKER_SWEEP_INTERVAL_SECONDS,
    }
timezone = "UTC"
