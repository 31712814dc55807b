"""The feed and the download links answer hot requests from memory, and hand big S3 objects to
the bucket (S3_REDIRECT): what crosses the wire to the bucket, proven through a recording proxy
in front of the real S3 test server."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import requests

from cdn.metadata import metadata_get, metadata_invalidate
from releases.control_files import CONTROL_FILES
from releases.integrations import buckets
from tests.cdn_support import feed_url
from tests.downloads_support import FILES, LATEST, UA, body_of, production_write

SAFARI = UA["safari-14"]
INSTALLER = FILES["mac-installer"]


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def recorded_s3(s3_proxy):
    """Production on S3, with the web side talking to it through a recording proxy."""
    production_write(buckets.production(role="promoter"))
    s3_proxy.clear()
    return s3_proxy


def objects_asked(proxy) -> set[str]:
    """The keys the web side asked the bucket for, other than the ≤ 1/s control-file check."""
    return {e.bucket_and_key[1] for e in proxy.record} - set(CONTROL_FILES)


def test_a_hot_manifest_and_a_hot_link_cost_no_bucket_round_trip(client, recorded_s3):
    manifest = feed_url(f"td-latest-mac-build-{LATEST}.json")
    first_feed = client.get(manifest)
    first_link = client.get("/download/mac", HTTP_USER_AGENT=SAFARI)
    assert objects_asked(recorded_s3)  # the first answers read the bucket
    recorded_s3.clear()
    metadata_get()
    for _ in range(5):
        feed = client.get(manifest)
        link = client.get("/download/mac", HTTP_USER_AGENT=SAFARI)
        assert content(feed) == content(first_feed)
        assert content(link) == content(first_link) == body_of(INSTALLER)
    assert objects_asked(recorded_s3) == set()


def test_a_promotion_is_seen_at_once_by_the_memory(client, recorded_s3):
    key = f"td-latest-mac-build-{LATEST}.json"
    assert json.loads(content(client.get(feed_url(key))))["version"] == "1.2.0"
    manifest = json.loads(content(client.get(feed_url(key))))
    manifest["artifacts"]["installer"] = None
    manifest["artifacts"]["dmg"] = {"universal": manifest["artifacts"]["dmg"]["universal"]}
    buckets.production(role="promoter").write_bytes(key, json.dumps(manifest).encode())
    metadata_invalidate()  # what promotion does after writing production
    assert json.loads(content(client.get(feed_url(key)))) == manifest
    link = client.get("/download/mac", HTTP_USER_AGENT=SAFARI)
    assert content(link) == body_of(FILES["mac-dmg-universal"])


def test_a_full_get_of_a_big_s3_object_is_a_presigned_redirect(client, recorded_s3, settings):
    settings.S3_REDIRECT = "presigned"
    settings.S3_REDIRECT_MIN_BYTES = 1
    for url in ("/download/mac", feed_url(INSTALLER)):
        response = client.get(url, HTTP_USER_AGENT=SAFARI)
        assert response.status_code == 302
        assert response["Cache-Control"] == "no-store"
        fetched = requests.get(response["Location"], timeout=10)
        assert fetched.status_code == 200
        assert fetched.content == body_of(INSTALLER)
        # The name the link or the feed would have given (the feed drops the build id).
        disposition = client.head(url, HTTP_USER_AGENT=SAFARI)["Content-Disposition"]
        assert fetched.headers["Content-Disposition"] == disposition


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        ("get", {"HTTP_RANGE": "bytes=0-9"}, 206),
        ("get", {"HTTP_RANGE": "bytes=0-1,5-6"}, 206),  # S3 and R2 answer one range only
        ("head", {}, 200),
    ],
)
def test_ranges_and_head_are_still_answered_here(
    client, recorded_s3, settings, method, headers, status
):
    settings.S3_REDIRECT = "presigned"
    settings.S3_REDIRECT_MIN_BYTES = 1
    response = getattr(client, method)("/download/mac", HTTP_USER_AGENT=SAFARI, **headers)
    assert response.status_code == status
    assert "Location" not in response


def test_a_small_object_is_served_not_redirected(client, recorded_s3, settings):
    settings.S3_REDIRECT = "presigned"
    settings.S3_REDIRECT_MIN_BYTES = 1024 * 1024
    response = client.get("/download/mac", HTTP_USER_AGENT=SAFARI)
    assert (response.status_code, content(response)) == (200, body_of(INSTALLER))


def test_a_public_base_redirects_to_the_key_under_it(client, recorded_s3, settings):
    settings.S3_REDIRECT = "public"
    settings.S3_REDIRECT_PUBLIC_BASE_URL = "https://files.example.com/base/"
    settings.S3_REDIRECT_MIN_BYTES = 1
    response = client.get("/download/mac", HTTP_USER_AGENT=SAFARI)
    assert response.status_code == 302
    assert response["Location"] == f"https://files.example.com/base/{quote(INSTALLER)}"
    assert "%20Build%20" in response["Location"]


def test_a_conditional_get_is_still_a_304_not_a_redirect(client, recorded_s3, settings):
    settings.S3_REDIRECT = "presigned"
    settings.S3_REDIRECT_MIN_BYTES = 1
    etag = client.head("/download/mac", HTTP_USER_AGENT=SAFARI)["ETag"]
    response = client.get("/download/mac", HTTP_USER_AGENT=SAFARI, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304


def test_the_filesystem_backend_never_redirects(client, fs_buckets, settings):
    production_write(buckets.production(role="promoter"))
    settings.S3_REDIRECT = "presigned"
    settings.S3_REDIRECT_MIN_BYTES = 1
    response = client.get("/download/mac", HTTP_USER_AGENT=SAFARI)
    assert (response.status_code, content(response)) == (200, body_of(INSTALLER))
