"""Helpers of the notification and CDN purge tests: on-commit callbacks, receivers, signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group, Permission, User

from tests.fakes.http_catcher import Catcher, Caught, start_catcher

WEBHOOK_SECRET = "notify-webhook-secret"
SLACK_TOKEN_PATH = "/services/T0001/B0001/slack-secret-token"
BASE_URL = "https://releases.example.com"
GROUP = "release managers"
# CDN purges: the public feed bases, and what promoting build cdn1 (v1.0.0, made the latest
# release) changes (tests.promotion_support.stage_build names its manifests).
PUBLIC_BASES = ["https://updates.example.com", "https://releases.example.com/update"]
PROMOTED_NAMES = [
    "desktop-builds.json",
    "desktop-releases.json",
    "latest-1.0.0.yml",
    "latest-build-cdn1.yml",
    "latest.yml",
    "td-latest-1.0.0.json",
    "td-latest-build-cdn1.json",
    "td-latest.json",
]


def work_queued(callbacks: list) -> list:
    """The on-commit callbacks other than notifications: each audit event of a kind that needs a
    person queues one `notify_event` as well (releases.services.notifications)."""
    return [c for c in callbacks if queued_task(c) != "releases.tasks.notify_event"]


def queued_task(callback) -> str:
    """The name of the task an on-commit callback queues (`releases.queue`), or "" for any
    other callback."""
    return getattr(callback, "task", "")


@dataclass
class Receivers:
    slack: Catcher
    webhook: Catcher


@pytest.fixture
def receivers(settings):
    """A Slack-compatible catcher and a webhook catcher, both configured, plus the e-mail group
    (Django's locmem mail backend holds the mail: `django.core.mail.outbox`)."""
    slack, webhook = start_catcher(), start_catcher()
    settings.NOTIFY_SLACK_WEBHOOK_URL = slack.url + SLACK_TOKEN_PATH
    settings.NOTIFY_WEBHOOK_URL = webhook.url + "/hooks/releases"
    settings.NOTIFY_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.NOTIFY_EMAIL_GROUP = GROUP
    settings.PUBLIC_BASE_URL = BASE_URL
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    yield Receivers(slack=slack, webhook=webhook)
    slack.stop()
    webhook.stop()


def group_member(name: str, email: str = "", *, group: str = GROUP) -> User:
    """A user of `group` (the `release managers` of migration 0002: approvers)."""
    found, created = Group.objects.get_or_create(name=group)
    if created:  # a transactional test flushed the tables, and the migration's groups with them
        found.permissions.set(
            Permission.objects.filter(
                content_type__app_label="releases",
                codename__in=["approve_release", "view_releaserequest"],
            )
        )
    user = User.objects.create_user(name, email=email or f"{name}@example.com", password="pw")
    user.groups.add(found)
    return user


def verified(caught: Caught, secret: str = WEBHOOK_SECRET) -> dict:
    """The payload of a generic-webhook delivery, after checking it as a receiver should: the
    signature over the raw body, and the delivery id and timestamp it covers."""
    expected = "sha256=" + hmac.new(secret.encode(), caught.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(caught.headers["x-selfhosted-signature-256"], expected)
    payload = json.loads(caught.body)
    assert payload["delivery"] == caught.headers["x-selfhosted-delivery"]
    assert str(payload["timestamp"]) == caught.headers["x-selfhosted-timestamp"]
    return payload


@pytest.fixture
def eager_retries():
    """Eager tasks that retry at once, as a worker does once the backoff has passed: Celery re-runs
    an eager task's retries only when its errors are not propagated to the caller (the backoff
    itself is exercised by the real-worker test, tests/releases/test_notify_worker.py)."""
    from selfhosted.celery import app

    propagates = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = propagates
