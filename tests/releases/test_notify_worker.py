"""Notifications and the CDN purge end to end on a real Celery worker (Redis, PostgreSQL), with
receivers down.

The web side is this test's Django (test client; tasks go to Redis, not run eagerly); a real
`celery worker -Q staging,promotion,notify` stages the build from the fake ToDesktop origin,
promotes it once approved in the admin, purges the fake Cloudflare API (which fails twice
first) and delivers every notification: the Slack receiver is down for good, the webhook
receiver fails twice before it answers, and e-mail goes through Django's file backend. The
release goes live all the same, each delivery and the purge are retried with backoff, and each
final outcome is recorded.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from email import message_from_bytes

import pytest
from django.contrib.auth.models import User

from releases.models import CdnPurge, DeliveryStatus, Notification, ReleaseRequest, ReleaseState
from tests.fakes.cloudflare_api import start_cloudflare
from tests.fakes.s3_server import free_port
from tests.fakes.todesktop_origin import FakeBuild, start_origin
from tests.notify_support import (
    GROUP,
    PUBLIC_BASES,
    SLACK_TOKEN_PATH,
    WEBHOOK_SECRET,
    group_member,
    verified,
)
from tests.promotion_support import subprocess_env
from tests.releases.test_promotion_end_to_end import not_eager  # noqa: F401 (a fixture)
from tests.releases.test_staging_worker_killed import _kill, _start_worker, _wait
from tests.webhook_support import APP_ID, BUILD_ID, HMAC_KEY, payload, post

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
    pytest.mark.usefixtures("not_eager"),
    pytest.mark.slow,  # starts a Celery worker
]

EVENTS = ["release.awaiting_review", "release.approved", "release.live"]
MAX_RETRIES = 2
MANIFESTS = [
    "latest",
    "latest-mac",
    "latest-linux",
    "td-latest",
    "td-latest-mac",
    "td-latest-linux",
]


def _purged_names() -> list[str]:
    """What promoting the first build (v1.2.0, made the latest release) changes for the feed."""
    names = ["desktop-builds.json", "desktop-releases.json"]
    for stem in MANIFESTS:
        ext = "json" if stem.startswith("td-") else "yml"
        names += [f"{stem}.{ext}", f"{stem}-1.2.0.{ext}", f"{stem}-build-{BUILD_ID}.{ext}"]
    return sorted(names)


def test_down_receivers_get_retries_with_backoff_and_the_release_goes_live(
    client, settings, tmp_path, fs_buckets, receivers
):
    origin = start_origin(FakeBuild(app_id=APP_ID, build_id=BUILD_ID))
    cloudflare = start_cloudflare()
    cloudflare.fail(503, times=2)
    settings.WEBHOOK_HMAC_KEY, settings.TODESKTOP_APP_ID = HMAC_KEY, APP_ID
    ada = group_member("ada", "ada@example.com")
    User.objects.filter(pk=ada.pk).update(is_staff=True)
    group_member("bob", "bob@example.com")
    slack_down = f"http://127.0.0.1:{free_port()}{SLACK_TOKEN_PATH}"
    receivers.webhook.fail(503, times=2)
    mails = tmp_path / "mail"
    env = subprocess_env(
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CELERY_TASK_ALWAYS_EAGER="false",
        TODESKTOP_DOWNLOAD_BASE_URL=origin.url,
        TODESKTOP_APP_ID=APP_ID,
        HTTP_RETRY_BACKOFF_SECONDS="0.05",
        TASK_MAX_RETRIES=str(MAX_RETRIES),
        TASK_RETRY_BACKOFF_SECONDS="1",
        PUBLIC_BASE_URL=settings.PUBLIC_BASE_URL,
        NOTIFY_SLACK_WEBHOOK_URL=slack_down,
        NOTIFY_WEBHOOK_URL=settings.NOTIFY_WEBHOOK_URL,
        NOTIFY_WEBHOOK_SECRET=WEBHOOK_SECRET,
        NOTIFY_EMAIL_GROUP=GROUP,
        EMAIL_URL=f"filemail:///{mails}",  # django-environ drops one slash
        CDN_PURGE_BACKEND="cloudflare",
        CDN_PUBLIC_BASE_URLS=",".join(PUBLIC_BASES),
        CLOUDFLARE_API_BASE_URL=cloudflare.api_base,
        CLOUDFLARE_ZONE_ID=cloudflare.zone,
        CLOUDFLARE_API_TOKEN=cloudflare.token,
    )
    log = tmp_path / "worker.log"
    worker = _start_worker(env, log, queues="staging,promotion,notify")
    try:
        body = payload(appVersion="1.2.0", releaseInfo={"latestReleaseBuildId": BUILD_ID})
        release = ReleaseRequest.objects.get(pk=post(client, body).json()["release_id"])
        _wait(lambda: _state(release) == ReleaseState.IN_REVIEW, 120, f"review ({_tail(log)})")
        client.force_login(ada)
        client.post(
            "/admin/releases/releaserequest/",
            {"action": "approve_releases", "_selected_action": [release.pk]},
        )
        _wait(lambda: _state(release) == ReleaseState.LIVE, 120, f"live ({_tail(log)})")
        _wait(lambda: not _pending(), 120, f"every delivery's outcome ({_tail(log)})")
        _wait(lambda: len(cloudflare.purges) == 2, 60, f"the purge ({_tail(log)})")
    finally:
        _kill(worker)
        origin.stop()
        cloudflare.stop()

    assert [a["status"] for a in cloudflare.attempts] == [503, 503, 200, 200]
    assert cloudflare.purges == [
        [f"{base}/{name}" for name in _purged_names()] for base in PUBLIC_BASES
    ]
    purge = CdnPurge.objects.get()
    assert (purge.status, purge.attempts) == (DeliveryStatus.DELIVERED, 3)

    rows = Notification.objects.all()
    assert Counter((row.kind, row.channel) for row in rows) == Counter(
        (kind, channel) for kind in EVENTS for channel in ("email", "slack", "webhook")
    )
    for row in rows.filter(channel="slack"):  # down: the first try and MAX_RETRIES retries
        assert (row.status, row.attempts) == (DeliveryStatus.FAILED, MAX_RETRIES + 1)
        assert row.last_error.startswith("gave up after retries: ")
        assert "slack-secret-token" not in row.last_error
    caught = receivers.webhook.requests
    assert sorted(c.status for c in caught) == [200, 200, 200, 503, 503]
    tries: dict[str, list[int]] = defaultdict(list)
    for hook, c in zip([verified(c) for c in caught], caught, strict=True):  # every try signed
        tries[hook["delivery"]].append(c.status)  # one delivery id across a delivery's retries
        assert hook["event"] in EVENTS
    assert all(statuses[-1] == 200 and 200 not in statuses[:-1] for statuses in tries.values())
    webhook = rows.filter(channel="webhook")
    assert {row.status for row in webhook} == {DeliveryStatus.DELIVERED}
    assert {str(row.delivery_id): row.attempts for row in webhook} == {
        delivery: len(statuses) for delivery, statuses in tries.items()
    }
    assert Counter(row.kind for row in webhook) == Counter(EVENTS)
    assert all(row.status == DeliveryStatus.DELIVERED for row in rows.filter(channel="email"))
    sent = [message_from_bytes(path.read_bytes()) for path in sorted(mails.iterdir())]
    assert len(sent) == 3
    assert {message["To"] for message in sent} == {"ada@example.com, bob@example.com"}


def _state(release: ReleaseRequest) -> str:
    return ReleaseRequest.objects.get(pk=release.pk).state


def _pending() -> bool:
    rows = Notification.objects.all()
    return rows.count() < 9 or rows.filter(status=DeliveryStatus.PENDING).exists()


def _tail(log) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""
