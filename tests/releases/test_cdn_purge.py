"""CDN purge after every change to production (README: CDN in front of the feed).

Against a fake Cloudflare API on loopback (tests/fakes/cloudflare_api.py), moto's CloudFront and
an HTTP catcher: a promotion purges exactly the manifests whose answer changed, under every
public base; a rollback purges desktop-releases.json and the channel manifests; failures are
retried, recorded in the trail and shown in /healthz as degraded, never failing the promotion.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from releases.models import (
    AuditEvent,
    Build,
    CdnPurge,
    DeliveryStatus,
    ReleaseRequest,
    ReleaseState,
)
from releases.services.approvals import release_decide
from releases.services.promotion import PromotionFailed, promotion_run
from releases.services.rollback import rollback_open
from tests.fakes.cloudflare_api import start_cloudflare
from tests.notify_support import PROMOTED_NAMES, PUBLIC_BASES
from tests.promotion_support import approve, stage_build

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fs_buckets")]

HOSTS = PUBLIC_BASES
PROMOTED = PROMOTED_NAMES


@pytest.fixture
def cloudflare(settings):
    cf = start_cloudflare()
    settings.CDN_PURGE_BACKEND = "cloudflare"
    settings.CDN_PUBLIC_BASE_URLS = HOSTS
    settings.CLOUDFLARE_API_BASE_URL = cf.api_base
    settings.CLOUDFLARE_ZONE_ID = cf.zone
    settings.CLOUDFLARE_API_TOKEN = cf.token
    yield cf
    cf.stop()


@pytest.fixture
def promote(django_capture_on_commit_callbacks):
    """Run a promotion as the worker does, and whatever it queues (the purge) after it."""

    def run(reason: str = "test promotion"):
        with django_capture_on_commit_callbacks(execute=True):
            return promotion_run(reason=reason, actor="ada")

    return run


def urls(host: str, names: list[str]) -> list[str]:
    return [f"{host}/{name}" for name in names]


def release_build(build_id: str, version: str) -> None:
    build, _ = stage_build(build_id, version)
    approve(build, release_info={"latestReleaseBuildId": build_id})


def test_a_promotion_sends_one_purge_per_public_host_listing_exactly_the_changed_manifests(
    cloudflare, promote
):
    release_build("cdn1", "1.0.0")

    promote()

    assert cloudflare.purges == [urls(host, PROMOTED) for host in HOSTS]
    purge = CdnPurge.objects.get()
    assert (purge.status, purge.attempts, purge.backend) == ("delivered", 1, "cloudflare")
    event = AuditEvent.objects.get(kind="cdn.purged")
    assert event.data["urls"] == {host: urls(host, PROMOTED) for host in HOSTS}
    assert "16 URL(s) through cloudflare" in event.message and event.actor == "ada"


def test_a_rollback_purges_desktop_releases_json_and_the_channel_manifests(
    cloudflare, promote, django_capture_on_commit_callbacks
):
    release_build("cdn1", "1.0.0")
    promote()
    release_build("cdn2", "1.1.0")
    promote()
    cloudflare.purges.clear()
    manager = User.objects.create_user("bob")
    manager.user_permissions.set(Permission.objects.filter(codename="approve_release"))
    rollback = rollback_open(build=Build.objects.get(build_id="cdn1"), actor="ada")

    with django_capture_on_commit_callbacks(execute=True):
        release_decide(release=rollback, user=manager, approve=True)

    rollback.refresh_from_db()
    assert rollback.state == ReleaseState.LIVE
    purged = ["desktop-releases.json", "latest.yml", "td-latest.json"]
    assert cloudflare.purges == [urls(host, purged) for host in HOSTS]


def test_a_fake_that_fails_twice_is_retried_and_then_succeeds(
    settings, cloudflare, promote, eager_retries, client
):
    settings.CDN_PUBLIC_BASE_URLS = HOSTS[:1]
    cloudflare.fail(503)
    cloudflare.fail(429)
    release_build("cdn1", "1.0.0")

    promote()

    assert [attempt["status"] for attempt in cloudflare.attempts] == [503, 429, 200]
    assert cloudflare.purges == [urls(HOSTS[0], PROMOTED)]
    purge = CdnPurge.objects.get()
    assert (purge.status, purge.attempts) == (DeliveryStatus.DELIVERED, 3)
    kinds = list(AuditEvent.objects.filter(kind__startswith="cdn.").values_list("kind", flat=True))
    assert kinds == ["cdn.purge_retrying", "cdn.purge_retrying", "cdn.purged"]
    assert "degraded" not in client.get("/healthz").json()["checks"]["cdn_purge"]


def test_a_purge_that_keeps_failing_gives_up_without_failing_the_promotion(
    settings, cloudflare, promote, eager_retries, client
):
    settings.CDN_PUBLIC_BASE_URLS = HOSTS[:1]
    cloudflare.fail(502, times=100)
    release_build("cdn1", "1.0.0")

    result = promote()

    assert result.live == ["cdn1"]
    assert ReleaseRequest.objects.get().state == ReleaseState.LIVE
    purge = CdnPurge.objects.get()
    assert (purge.status, purge.attempts) == (DeliveryStatus.FAILED, settings.TASK_MAX_RETRIES + 1)
    assert purge.last_error.startswith("gave up after retries: TransientError: HTTP 502")
    assert (
        AuditEvent.objects.filter(kind="cdn.purge_retrying").count()
        == settings.TASK_MAX_RETRIES + 1
    )
    assert AuditEvent.objects.filter(kind="cdn.purge_failed").count() == 1
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json()["status"] == "degraded"
    check = answer.json()["checks"]["cdn_purge"]
    assert check["ok"] is True
    assert (
        check["degraded"]
        == f"the latest CDN purge (#{purge.pk}) failed; a CDN may serve old manifests"
    )
    assert "502" not in check["degraded"]  # /healthz answers anyone: the error is in the trail


def _answers(client, paths: list[str]) -> dict[str, tuple[int, bytes]]:
    answers = {}
    for path in paths:
        response = client.get(f"/update/{path}")
        body = b"".join(response.streaming_content) if response.streaming else response.content
        answers[path] = (response.status_code, body)
    return answers


def test_every_feed_answer_a_change_to_production_moves_is_purged_and_nothing_else(
    client, cloudflare, promote, django_capture_on_commit_callbacks
):
    """The feed itself is the judge: every feed path whose answer a promotion or a rollback
    changed is purged, and the only names purged without a changed answer are the two control
    files (a CDN in front of the bucket itself serves them as they are)."""
    control = {"desktop-builds.json", "desktop-releases.json"}
    paths = sorted(
        control
        | {
            f"{stem}{suffix}"
            for stem in ("latest", "latest-mac", "td-latest", "td-latest-mac")
            for suffix in (
                ".yml",
                ".json",
                "-1.0.0.yml",
                "-1.0.0.json",
                "-1.1.0.yml",
                "-1.1.0.json",
            )
        }
        | {
            f"{kind}-build-{bid}.{ext}"
            for kind in ("latest", "td-latest")
            for bid in ("cdn1", "cdn2")
            for ext in ("yml", "json")
        }
    )
    manager = User.objects.create_user("bob")
    manager.user_permissions.set(Permission.objects.filter(codename="approve_release"))

    def rollback():
        release = rollback_open(build=Build.objects.get(build_id="cdn1"), actor="ada")
        with django_capture_on_commit_callbacks(execute=True):
            release_decide(release=release, user=manager, approve=True)

    steps = [
        lambda: (release_build("cdn1", "1.0.0"), promote()),
        lambda: (release_build("cdn2", "1.1.0"), promote()),
        rollback,
    ]
    for step in steps:
        before = _answers(client, paths)
        cloudflare.purges.clear()
        step()
        after = _answers(client, paths)
        changed = {path for path in paths if before[path] != after[path]}
        purged = {url.removeprefix(f"{HOSTS[0]}/") for url in cloudflare.purges[0]}
        assert changed, "the step changed nothing the feed serves"
        assert changed <= purged
        assert purged - changed <= control


def test_a_promotion_that_refuses_one_build_still_purges_what_it_published(
    cloudflare, django_capture_on_commit_callbacks
):
    release_build("cdn1", "1.0.0")
    refused = Build.objects.create(build_id="gone1", app_id="app1", version="9.9.9")
    approve(refused)  # approved, but nothing of it was ever staged

    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(PromotionFailed):
            promotion_run(reason="test promotion", actor="ada")

    assert cloudflare.purges == [urls(host, PROMOTED) for host in HOSTS]
