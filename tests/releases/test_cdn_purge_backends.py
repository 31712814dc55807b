"""The other purge backends, the admin's view of purges, and purging switched off."""

from __future__ import annotations

from urllib.parse import unquote

import boto3
import pytest
from django.contrib.auth.models import Group, Permission, User

from releases.models import AuditEvent, CdnPurge, DeliveryStatus
from releases.services.promotion import promotion_run
from tests.fakes.cloudflare_api import start_cloudflare
from tests.fakes.http_catcher import start_catcher
from tests.notify_support import PROMOTED_NAMES, PUBLIC_BASES, queued_task, work_queued
from tests.promotion_support import approve, stage_build

pytestmark = pytest.mark.django_db

HOSTS = PUBLIC_BASES
NAMES = PROMOTED_NAMES


@pytest.fixture
def promote(django_capture_on_commit_callbacks):
    def run():
        build, _ = stage_build("cdn1", "1.0.0")
        approve(build, release_info={"latestReleaseBuildId": "cdn1"})
        with django_capture_on_commit_callbacks(execute=True) as queued:
            promotion_run(reason="test promotion", actor="ada")
        return queued

    return run


def _distribution(client) -> str:
    origin = {
        "Id": "feed",
        "DomainName": "releases.example.com",
        "CustomOriginConfig": {
            "HTTPPort": 80,
            "HTTPSPort": 443,
            "OriginProtocolPolicy": "https-only",
        },
    }
    config = {
        "CallerReference": "tests",
        "Comment": "",
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "feed",
            "ViewerProtocolPolicy": "redirect-to-https",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        },
    }
    return client.create_distribution(DistributionConfig=config)["Distribution"]["Id"]


def test_cloudfront_gets_one_invalidation_of_the_changed_paths_of_every_public_base(
    s3_server, settings, fs_buckets, promote
):
    server = s3_server  # moto's server speaks CloudFront too
    cloudfront = boto3.client(
        "cloudfront",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    distribution = _distribution(cloudfront)
    settings.CDN_PURGE_BACKEND = "cloudfront"
    settings.CDN_PUBLIC_BASE_URLS = HOSTS
    settings.CLOUDFRONT_DISTRIBUTION_ID = distribution
    settings.CLOUDFRONT_ENDPOINT_URL = server.url
    settings.CLOUDFRONT_CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}

    promote()

    [listed] = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"][
        "Items"
    ]
    batch = cloudfront.get_invalidation(DistributionId=distribution, Id=listed["Id"])
    batch = batch["Invalidation"]["InvalidationBatch"]
    purge = CdnPurge.objects.get()
    assert batch["CallerReference"] == str(purge.reference)  # a retry finds it, not a second
    expected = sorted(f"/{name}" for name in NAMES) + sorted(f"/update/{name}" for name in NAMES)
    assert sorted(batch["Paths"]["Items"]) == sorted(expected)
    assert purge.status == DeliveryStatus.DELIVERED
    assert listed["Id"] in AuditEvent.objects.get(kind="cdn.purged").message


def test_cloudfront_refusing_the_distribution_fails_the_purge_at_once(
    s3_server, settings, fs_buckets, promote
):
    settings.CDN_PURGE_BACKEND = "cloudfront"
    settings.CDN_PUBLIC_BASE_URLS = HOSTS[:1]
    settings.CLOUDFRONT_DISTRIBUTION_ID = "EDFDVBD6EXAMPLE"  # no such distribution
    settings.CLOUDFRONT_ENDPOINT_URL = s3_server.url
    settings.CLOUDFRONT_CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}

    promote()

    purge = CdnPurge.objects.get()
    assert (purge.status, purge.attempts) == (DeliveryStatus.FAILED, 1)
    assert purge.last_error.startswith("CloudFront: NoSuchDistribution")
    assert AuditEvent.objects.filter(kind="cdn.purge_failed").count() == 1


def test_the_http_backend_posts_each_hosts_urls_as_json_with_the_authorization(
    settings, fs_buckets, promote
):
    catcher = start_catcher()
    settings.CDN_PURGE_BACKEND = "http"
    settings.CDN_PUBLIC_BASE_URLS = HOSTS
    settings.CDN_PURGE_HTTP_URL = f"{catcher.url}/purge"
    settings.CDN_PURGE_HTTP_AUTHORIZATION = "Bearer purge-secret"
    try:
        promote()
    finally:
        catcher.stop()

    assert [(c.method, c.path) for c in catcher.requests] == [("POST", "/purge")] * 2
    assert [c.json() for c in catcher.requests] == [
        {"urls": [f"{host}/{name}" for name in NAMES]} for host in HOSTS
    ]
    assert {c.headers["authorization"] for c in catcher.requests} == {"Bearer purge-secret"}


def test_the_http_backend_sends_one_request_per_url_into_a_url_template(
    settings, fs_buckets, promote
):
    catcher = start_catcher()
    settings.CDN_PURGE_BACKEND = "http"
    settings.CDN_PUBLIC_BASE_URLS = HOSTS[:1]
    settings.CDN_PURGE_HTTP_URL = f"{catcher.url}/purge?url={{url}}"
    settings.CDN_PURGE_HTTP_METHOD = "PURGE"
    settings.CDN_PURGE_HTTP_AUTHORIZATION = ""
    try:
        promote()
    finally:
        catcher.stop()

    assert {c.method for c in catcher.requests} == {"PURGE"}
    purged = [unquote(c.path.removeprefix("/purge?url=")) for c in catcher.requests]
    assert purged == [f"{HOSTS[0]}/{name}" for name in NAMES]
    assert all("authorization" not in c.headers for c in catcher.requests)


def test_with_purging_off_a_promotion_queues_no_purge(settings, fs_buckets, promote):
    settings.CDN_PURGE_BACKEND = "off"

    queued = promote()

    assert [queued_task(c) for c in work_queued(queued)] == []
    assert not CdnPurge.objects.exists()


def test_a_manager_purges_a_failed_purge_again_from_the_admin(
    client, settings, fs_buckets, promote, django_capture_on_commit_callbacks
):
    cf = start_cloudflare()
    settings.CDN_PURGE_BACKEND = "cloudflare"
    settings.CDN_PUBLIC_BASE_URLS = HOSTS[:1]
    settings.CLOUDFLARE_API_BASE_URL = cf.api_base
    settings.CLOUDFLARE_ZONE_ID = cf.zone
    settings.CLOUDFLARE_API_TOKEN = "revoked-token"  # 403: fails at once, no retries
    try:
        promote()
        failed = CdnPurge.objects.get()
        assert failed.status == DeliveryStatus.FAILED and "HTTP 403" in failed.last_error
        assert client.get("/healthz").json()["status"] == "degraded"
        manager = User.objects.create_user("grace", password="pw", is_staff=True)
        manager.user_permissions.set(
            Permission.objects.filter(codename__in=["view_cdnpurge", "reconcile_production"])
        )
        client.force_login(manager)
        page = client.get(f"/admin/releases/cdnpurge/{failed.pk}/change/").content.decode()
        assert "HTTP 403" in page and "revoked-token" not in page
        settings.CLOUDFLARE_API_TOKEN = cf.token  # fixed

        with django_capture_on_commit_callbacks(execute=True):
            answer = client.post(
                "/admin/releases/cdnpurge/",
                {"action": "purge_again", "_selected_action": [failed.pk]},
            )
    finally:
        cf.stop()

    assert answer.status_code == 302
    again = CdnPurge.objects.exclude(pk=failed.pk).get()
    assert (again.status, again.urls, again.actor) == ("delivered", failed.urls, "grace")
    assert cf.purges == [failed.urls[HOSTS[0]]]
    assert "degraded" not in client.get("/healthz").json()["checks"]["cdn_purge"]


def test_purges_are_read_only_in_the_admin_and_reviewers_cannot_purge_again(client, fs_buckets):
    purge = CdnPurge.objects.create(backend="http", urls={HOSTS[0]: [f"{HOSTS[0]}/latest.yml"]})
    reviewer = User.objects.create_user("rita", password="pw", is_staff=True)
    reviewer.groups.add(Group.objects.get(name="auditors"))
    client.force_login(reviewer)

    assert client.get("/admin/releases/cdnpurge/").status_code == 200
    assert b"purge_again" not in client.get("/admin/releases/cdnpurge/").content
    assert client.post(f"/admin/releases/cdnpurge/{purge.pk}/change/", {}).status_code == 403
    assert (
        client.post(f"/admin/releases/cdnpurge/{purge.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert CdnPurge.objects.get().urls == purge.urls
