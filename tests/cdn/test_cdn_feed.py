"""The feed view (docs/feed.md): paths, methods, client IP, host mounting, metadata, /healthz."""

from __future__ import annotations

import json

import pytest
from django.core.cache.backends.base import BaseCache
from django.core.wsgi import get_wsgi_application
from django.test import RequestFactory

from cdn.metadata import metadata_get, metadata_invalidate
from cdn.serving import cache_control_for, feed_filename
from releases.integrations import buckets
from tests.cdn_support import build, feed_url, publish

MAC_YML = b"version: 1.1.0\npath: App-1.1.0-mac.zip\n"


class BrokenCache(BaseCache):
    """A cache server that is down (a real backend would raise a connection error)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__({})

    def get(self, key, default=None, version=None):
        raise ConnectionError("cache unreachable")

    def set(self, key, value, timeout=None, version=None):
        raise ConnectionError("cache unreachable")


@pytest.fixture
def prod(fs_buckets):
    bucket = buckets.production(role="promoter")
    publish(
        bucket,
        files={
            "latest-mac-build-b100.yml": b"version: 1.0.0\n",
            "latest-mac-build-b110.yml": MAC_YML,
            "latest-build-b110.yml": b"version: 1.1.0 windows\n",
            "latest-build-b120.yml": b"version: 1.2.0 windows\n",
            "td-latest-linux-build-b100.json": b'{"version": "1.0.0"}',
            "App-1.1.0-build-b110-mac.zip": b"zip bytes",
            "100%.txt": b"percent",
        },
        builds=[build("b100", "1.0.0"), build("b110", "1.1.0"), build("b120", "1.2.0", False)],
        releases={"latestReleaseBuildId": "b110", "releaseRedirections": []},
    )
    return bucket


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_an_empty_path_is_a_400(client, prod):
    assert client.get("/update/").status_code == 400
    assert client.post("/update/").status_code == 400


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
@pytest.mark.parametrize("path", ["latest-mac.yml", "my-ip", "missing.bin"])
def test_methods_other_than_get_and_head_are_a_405(client, prod, method, path):
    response = getattr(client, method)(feed_url(path))
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_a_channel_manifest_is_served_through_the_latest_build_rule(client, prod):
    response = client.get("/update/latest-mac.yml?noCache=1a2b3c")
    assert response.status_code == 200
    assert body(response) == MAC_YML
    assert response["Content-Type"] == "text/yaml"
    assert response["Content-Disposition"] == 'attachment; filename="latest-mac.yml"'
    assert response["Cache-Control"] == "public, max-age=60"


def test_a_versioned_manifest_is_served_from_its_released_build(client, prod):
    response = client.get("/update/td-latest-linux-1.0.0.json")
    assert body(response) == b'{"version": "1.0.0"}'
    assert response["Content-Disposition"] == 'attachment; filename="td-latest-linux.json"'
    assert client.get("/update/latest-1.2.0.yml").status_code == 404  # 1.2.0 is not released


def test_a_build_first_channel_name_is_served(client, prod):
    assert body(client.get("/update/latest-build-b100-mac.yml")) == b"version: 1.0.0\n"


def test_a_build_by_ip_rule_uses_the_socket_address(client, prod):
    rules = [{"rule": "buildByIp", "buildId": "b100", "ipList": ["198.51.100.7"]}]
    publish(prod, releases={"latestReleaseBuildId": "b110", "releaseRedirections": rules})
    mine = client.get("/update/latest-mac.yml", REMOTE_ADDR="198.51.100.7")
    assert body(mine) == b"version: 1.0.0\n"
    other = client.get("/update/latest-mac.yml", REMOTE_ADDR="198.51.100.8")
    assert body(other) == MAC_YML


def test_a_build_by_platform_rule_only_moves_that_platform(client, prod):
    rules = [{"rule": "buildByPlatform", "buildId": "b120", "platforms": ["windows"]}]
    publish(prod, releases={"latestReleaseBuildId": "b110", "releaseRedirections": rules})
    assert body(client.get("/update/latest.yml")) == b"version: 1.2.0 windows\n"
    assert body(client.get("/update/latest-mac.yml")) == MAC_YML


def test_a_binary_is_served_with_the_build_id_dropped_from_its_name(client, prod):
    response = client.get(feed_url("App-1.1.0-build-b110-mac.zip"))
    assert body(response) == b"zip bytes"
    assert response["Content-Disposition"] == 'attachment; filename="App-1.1.0-mac.zip"'


def test_a_percent_encoded_name_is_decoded_once(client, prod):
    assert body(client.get("/update/100%25.txt")) == b"percent"


@pytest.mark.parametrize("path", ["%00x", "a\\b", "a%0Ab/", "x" * 300])
def test_a_path_that_cannot_name_an_object_is_a_400(client, prod, path):
    assert client.get("/update/" + path).status_code == 400


@pytest.mark.parametrize("path", ["nsis-web/", "/latest.yml", "my-ip/", "dir//b.zip", "a/"])
def test_a_name_with_an_empty_segment_is_not_found_like_the_original(client, prod, path):
    response = client.get("/update/" + path)
    assert (response.status_code, response.content) == (404, b"Not Found")
    assert response["Cache-Control"] == "no-store"


def test_a_name_with_an_empty_segment_is_not_found_on_a_feed_host(db, prod, settings):
    settings.FEED_HOSTS = settings.ALLOWED_HOSTS = ["feed.example.com"]
    answer: dict = {}
    for path in ("/nsis-web/", "//latest.yml", "/my-ip/"):
        # The WSGI environ as a server builds it (the test client would read `//latest.yml`
        # as a host name).
        environ = RequestFactory().get("/", HTTP_HOST="feed.example.com").environ
        environ["PATH_INFO"] = path
        chunks = get_wsgi_application()(environ, lambda status, *_: answer.update(s=status))
        assert (answer["s"], b"".join(chunks)) == ("404 Not Found", b"Not Found")


@pytest.mark.parametrize("path", ["a/../latest.yml", "./latest.yml", "../../latest.yml"])
def test_dot_segments_are_removed_as_by_any_url_parser(client, prod, path):
    assert body(client.get("/update/" + path)) == body(client.get("/update/latest.yml"))


def test_dot_segments_never_climb_above_the_feed(client, prod):
    response = client.get("/update/../admin/login/")
    assert response.status_code == 404  # the feed's `admin/login/`, not the admin
    assert response.content == b"Not Found"


def test_the_control_files_are_not_downloadable(client, prod):
    assert client.get("/update/desktop-builds.json").status_code == 404
    assert client.get("/update/desktop-releases.json").status_code == 404


def test_my_ip_is_the_socket_address_by_default(client, prod):
    response = client.get(
        "/update/my-ip", REMOTE_ADDR="203.0.113.5", HTTP_CF_CONNECTING_IP="1.1.1.1"
    )
    assert response.status_code == 200
    assert response.content == b"203.0.113.5"
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Cache-Control"] == "no-store"


def test_my_ip_reads_the_configured_header(client, prod, settings):
    settings.TRUSTED_CLIENT_IP_HEADER = "CF-Connecting-IP"
    response = client.get("/update/my-ip", HTTP_CF_CONNECTING_IP="2001:DB8::7")
    assert response.content == b"2001:db8::7"
    # A missing or invalid header falls back to the socket address.
    assert client.get("/update/my-ip", REMOTE_ADDR="203.0.113.5").content == b"203.0.113.5"
    invalid = client.get("/update/my-ip", REMOTE_ADDR="203.0.113.5", HTTP_CF_CONNECTING_IP="x")
    assert invalid.content == b"203.0.113.5"


@pytest.mark.parametrize(
    ("count", "header", "expected"),
    [
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        (2, "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        (2, "198.51.100.1", "127.0.0.1"),  # fewer hops than proxies: not trusted
        (1, "198.51.100.1:5678", "198.51.100.1"),
        (1, "[2001:db8::1]:443", "2001:db8::1"),
    ],
)
def test_x_forwarded_for_is_read_from_the_right(client, prod, settings, count, header, expected):
    settings.TRUSTED_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.TRUSTED_PROXY_COUNT = count
    assert client.get("/update/my-ip", HTTP_X_FORWARDED_FOR=header).content == expected.encode()


def test_an_ip_rule_matches_the_trusted_header_address(client, prod, settings):
    settings.TRUSTED_CLIENT_IP_HEADER = "X-Forwarded-For"
    rules = [{"rule": "buildByIp", "buildId": "b100", "ipList": ["2001:DB8::7"]}]
    publish(prod, releases={"latestReleaseBuildId": "b110", "releaseRedirections": rules})
    response = client.get("/update/latest-mac.yml", HTTP_X_FORWARDED_FOR="2001:db8:0::7")
    assert body(response) == b"version: 1.0.0\n"


def test_feed_hosts_serve_the_feed_at_the_root(client, prod, settings):
    settings.FEED_HOSTS = ["feed.example.com"]
    settings.ALLOWED_HOSTS = ["feed.example.com", "testserver"]
    response = client.get("/latest-mac.yml", HTTP_HOST="feed.example.com:8443")
    assert body(response) == MAC_YML
    assert client.get("/", HTTP_HOST="feed.example.com").status_code == 400
    assert client.get("/my-ip", HTTP_HOST="FEED.example.com").status_code == 200
    # Other hosts keep the normal layout.
    assert client.get("/latest-mac.yml").status_code == 404
    assert body(client.get("/update/latest-mac.yml")) == MAC_YML


def test_download_hosts_do_not_serve_the_feed(client, prod, settings):
    settings.DOWNLOAD_HOSTS = ["dl.example.com"]
    settings.ALLOWED_HOSTS = ["dl.example.com", "testserver"]
    # The download links' own routes answer there, never the feed: each path is read as a
    # download route whose platform is not one, with the download links' own message.
    answers = {
        "/latest-mac.yml": "Unsupported platform (latest-mac.yml)",
        "/update/latest-mac.yml": "Unsupported platform (update)",
    }
    for path, message in answers.items():
        response = client.get(path, HTTP_HOST="dl.example.com", HTTP_USER_AGENT="Mozilla/5.0")
        assert (response.status_code, body(response)) == (400, message.encode())
    # while the same host answers a real download route by resolving it (the latest release
    # b110 has no td manifest in this fixture's production)
    response = client.get("/mac", HTTP_HOST="dl.example.com", HTTP_USER_AGENT="Mozilla/5.0")
    assert (response.status_code, body(response)) == (
        404,
        b"Could not find: td-latest-mac-build-b110.json",
    )


def test_the_metadata_is_read_once_and_refreshed_when_production_changes(client, prod, settings):
    settings.FEED_METADATA_CHECK_SECONDS = 3600
    assert body(client.get("/update/latest-mac.yml")) == MAC_YML
    # Written behind the feed's back (another process): the cached copy answers at first …
    prod.write_bytes("desktop-releases.json", json.dumps({"latestReleaseBuildId": "b100"}).encode())
    assert body(client.get("/update/latest-mac.yml")) == MAC_YML
    # … and the changed ETag is noticed at the next check.
    settings.FEED_METADATA_CHECK_SECONDS = 0
    assert body(client.get("/update/latest-mac.yml")) == b"version: 1.0.0\n"


def test_invalidation_makes_a_promotion_visible_at_once(client, prod):
    assert body(client.get("/update/latest-mac.yml")) == MAC_YML
    prod.write_bytes("desktop-releases.json", json.dumps({"latestReleaseBuildId": "b100"}).encode())
    metadata_invalidate()
    assert body(client.get("/update/latest-mac.yml")) == b"version: 1.0.0\n"


def test_the_ttl_safety_net_rereads_but_does_not_reparse_unchanged_files(prod, settings):
    settings.FEED_METADATA_TTL_SECONDS = 0
    settings.FEED_METADATA_CHECK_SECONDS = 0
    first = metadata_get()
    assert metadata_get() is first
    prod.write_bytes("desktop-releases.json", json.dumps({"latestReleaseBuildId": "b100"}).encode())
    assert metadata_get().releases == {"latestReleaseBuildId": "b100"}


def test_a_refresh_failure_keeps_the_last_copy_and_recovers(client, prod, settings):
    assert body(client.get("/update/latest-mac.yml")) == MAC_YML
    settings.FEED_METADATA_CHECK_SECONDS = 0
    settings.CACHES = {"default": {"BACKEND": "tests.cdn.test_cdn_feed.BrokenCache"}}
    assert body(client.get("/update/latest-mac.yml")) == MAC_YML  # served from the last copy
    assert "refresh failed" in metadata_get().errors[0]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert metadata_get().errors == ()


def test_a_missing_releases_file_means_no_rules(client, prod):
    prod.delete("desktop-releases.json")
    metadata_invalidate()
    assert client.get("/update/latest-mac.yml").status_code == 404
    assert body(client.get("/update/latest-mac-build-b110.yml")) == MAC_YML


@pytest.mark.django_db
def test_a_corrupt_builds_file_is_reported_and_direct_paths_keep_working(client, prod, settings):
    prod.write_bytes("desktop-builds.json", b"[{not json")
    metadata_invalidate()
    assert body(client.get("/update/latest-mac-build-b110.yml")) == MAC_YML
    assert body(client.get("/update/latest-mac.yml")) == MAC_YML  # rules still apply
    assert client.get("/update/latest-mac-1.1.0.yml").status_code == 404  # served as is
    health = health_details(client, settings)["feed_metadata"]
    assert health["ok"] is False
    assert "desktop-builds.json: invalid JSON" in health["error"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "corrupt",
    [b'{"latestReleaseBuildId": "b1', b"", b"[]", b"\xff\xfe"],
    ids=["truncated", "empty", "wrong-shape", "not-utf8"],
)
def test_a_corrupt_releases_file_keeps_the_last_good_copy_served(client, prod, settings, corrupt):
    """A truncated desktop-releases.json once made latest.yml and /download/mac 404 for
    everyone: the feed now keeps what it last parsed from the bucket and /healthz is degraded."""
    assert body(client.get("/update/latest-mac.yml")) == MAC_YML  # a good copy was parsed
    prod.write_bytes("desktop-releases.json", corrupt)
    metadata_invalidate()
    assert body(client.get("/update/latest-mac.yml")) == MAC_YML
    assert body(client.get("/update/latest.yml")) == b"version: 1.1.0 windows\n"
    checks = client.get("/healthz").json()["checks"]
    assert checks["feed_metadata"]["ok"] is True
    assert "last good copy" in checks["feed_metadata"]["degraded"]
    # A good copy written afterwards is served, and the notice goes away.
    good = {"latestReleaseBuildId": "b100", "releaseRedirections": []}
    prod.write_bytes("desktop-releases.json", json.dumps(good).encode())
    metadata_invalidate()
    assert body(client.get("/update/latest-mac.yml")) == b"version: 1.0.0\n"
    assert "degraded" not in client.get("/healthz").json()["checks"]["feed_metadata"]


@pytest.mark.django_db
def test_a_corrupt_file_with_no_good_copy_before_it_fails_the_check(client, prod, settings):
    prod.write_bytes("desktop-releases.json", b"{")
    assert client.get("/update/latest-mac.yml").status_code == 404
    health = health_details(client, settings)["feed_metadata"]
    assert health["ok"] is False and "desktop-releases.json: invalid JSON" in health["error"]


def health_details(client, settings) -> dict:
    """/healthz as an operator sees it (the error texts need the metrics token)."""
    settings.METRICS_TOKEN = "ops-token"
    answer = client.get("/healthz", headers={"Authorization": "Bearer ops-token"})
    return answer.json()["checks"]


@pytest.mark.django_db
def test_healthz_reports_a_missing_production_file(client, prod, settings):
    assert client.get("/healthz").json()["checks"]["feed_metadata"]["ok"] is True
    prod.delete("desktop-builds.json")
    metadata_invalidate()
    assert client.get("/healthz").json()["checks"]["feed_metadata"] == {"ok": False}
    health = health_details(client, settings)["feed_metadata"]
    assert health == {"ok": False, "error": "RuntimeError: desktop-builds.json: missing"}


@pytest.mark.django_db
def test_healthz_accepts_an_empty_production_bucket(client, fs_buckets):
    assert client.get("/healthz").json()["checks"]["feed_metadata"]["ok"] is True


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("app-1.0.0-build-231113r6n9icu7f.AppImage", "app-1.0.0.AppImage"),
        ("App Setup 1.0.0 - Build 231113r6n9icu7f-x64.exe", "App Setup 1.0.0 - x64.exe"),
        ("App 1.0.0 - Build 231113r6n9icu7f-arm64.dmg", "App 1.0.0 - arm64.dmg"),
        ("App 1.0.0 - Build 231113r6n9icu7f-x64-mac.zip", "App 1.0.0 - x64-mac.zip"),
        ("My App-1.1.0-build-abc123-x86_64.AppImage", "My App-1.1.0-x86_64.AppImage"),
        ("my-app_1.1.0-build-abc123_amd64.deb", "my-app_1.1.0_amd64.deb"),
        ("latest-mac-build-abc123.yml", "latest-mac.yml"),
        ("folder/td-latest-build-abc123.json", "td-latest.json"),
        ("plain.zip", "plain.zip"),
    ],
)
def test_the_served_name_drops_only_the_build_id(key, name):
    assert feed_filename(key) == name


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("latest-mac.yml", "manifest"),
        ("latest-mac-build-abc.yml", "manifest"),
        ("td-latest-1.0.0.json", "manifest"),
        ("desktop-builds.json", "manifest"),
        ("App-1.0.0-mac.zip", "immutable"),
        ("App Setup 1.0.0 - Build abc-x64.exe", "immutable"),
        ("app-build-abc.AppImage", "immutable"),
        ("App-1.0.0-mac.zip.blockmap", "immutable"),
        ("favicon.ico", "manifest"),
    ],
)
def test_cache_control_by_kind(settings, key, kind):
    settings.FEED_MANIFEST_CACHE_CONTROL = "manifest"
    settings.FEED_IMMUTABLE_CACHE_CONTROL = "immutable"
    assert cache_control_for(key) == kind
