"""Feed answers replayed from memory (cdn/replies.py): a plain poll whose answer Django already
gave is answered again without Django, with the very same status, headers and body, while the
rules are still walked for every request and anything unusual still reaches Django."""

from __future__ import annotations

import io
import sys

import pytest

from adoption.counting import discard_pending, flush_now
from adoption.models import AdoptionCount
from cdn.memory import replies_memo
from releases.integrations import buckets
from selfhosted.handler import FastLaneHandler
from selfhosted.wsgi import application
from tests.cdn_support import build, publish

IN_COHORT = "3b0c6b52-1d7e-4e8a-9c41-000000000000"  # position 0: in every rollout
OUT_OF_COHORT = "3b0c6b52-1d7e-4e8a-9c41-ffffffffffff"  # position 1: in none below 100%
MANIFEST = b"version: %s\nfiles:\n  - url: App-%s-mac.zip\n    sha512: x\n    size: 1\n"


def environ(path: str, method: str = "GET", host: str = "testserver", **headers: str) -> dict:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "RAW_URI": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": host,
        "REMOTE_ADDR": "203.0.113.9",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        **headers,
    }


def call(path: str, method: str = "GET", app=application, **kwargs: str) -> tuple[str, list, bytes]:
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=status, headers=list(headers))

    body = app(environ(path, method, **kwargs), start_response)
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return answer["status"], answer["headers"], data


def kept() -> int:
    return len(replies_memo(buckets.production()))


@pytest.fixture
def two_builds(db, any_buckets, settings):
    """b1 is the latest release; b2 is rolled out to half of the installs on mac."""
    settings.ALLOWED_HOSTS = ["testserver", "feed.example.com"]
    publish(
        buckets.production(role="promoter"),
        files={
            "latest-mac-build-b1.yml": MANIFEST % (b"1.0.0", b"1.0.0"),
            "latest-mac-build-b2.yml": MANIFEST % (b"2.0.0", b"2.0.0"),
        },
        builds=[build("b1", "1.0.0"), build("b2", "2.0.0")],
        releases={
            "latestReleaseBuildId": "b1",
            "releaseRedirections": [
                {"rule": "buildByPercentage", "buildId": "b2", "percentage": 50}
            ],
        },
    )


def test_a_second_poll_gets_the_same_answer_from_memory(two_builds):
    first = call("/update/latest-mac.yml")
    assert first[0] == "200 OK" and b"version: 1.0.0" in first[2]
    assert kept() == 1
    second = call("/update/latest-mac.yml")
    assert second == first
    names = {name for name, _ in second[1]}
    # SecurityMiddleware's headers are part of what is kept, not only the view's.
    assert {"X-Content-Type-Options", "Cache-Control", "ETag", "Content-Disposition"} <= names


def test_head_is_kept_apart_and_has_no_body(two_builds):
    call("/update/latest-mac.yml")
    first = call("/update/latest-mac.yml", "HEAD")
    second = call("/update/latest-mac.yml", "HEAD")
    assert second == first and second[2] == b""
    assert dict(second[1])["Content-Length"] == str(len(MANIFEST % (b"1.0.0", b"1.0.0")))
    assert kept() == 2


def test_the_rules_are_walked_for_every_request(two_builds):
    for _ in range(3):
        _, _, inside = call("/update/latest-mac.yml", HTTP_X_USER_STAGING_ID=IN_COHORT)
        _, _, outside = call("/update/latest-mac.yml", HTTP_X_USER_STAGING_ID=OUT_OF_COHORT)
        _, _, without = call("/update/latest-mac.yml")
        assert b"version: 2.0.0" in inside
        assert b"version: 1.0.0" in outside and b"version: 1.0.0" in without


def test_a_promotion_changes_the_answer_at_once(two_builds):
    assert b"1.0.0" in call("/update/latest-mac.yml")[2]
    call("/update/latest-mac.yml")
    publish(
        buckets.production(role="promoter"),
        releases={"latestReleaseBuildId": "b2", "releaseRedirections": []},
    )
    assert b"version: 2.0.0" in call("/update/latest-mac.yml")[2]
    assert b"version: 2.0.0" in call("/update/latest-mac.yml")[2]


def test_ranges_and_preconditions_still_reach_django(two_builds):
    status, headers, _ = call("/update/latest-mac.yml")
    etag = dict(headers)["ETag"]
    call("/update/latest-mac.yml")
    assert call("/update/latest-mac.yml", HTTP_IF_NONE_MATCH=etag)[0] == "304 Not Modified"
    status, _, body = call("/update/latest-mac.yml", HTTP_RANGE="bytes=0-6")
    assert (status, body) == ("206 Partial Content", b"version")
    assert kept() == 1


def test_an_unknown_host_is_refused_even_when_an_answer_is_kept(two_builds):
    call("/update/latest-mac.yml")
    call("/update/latest-mac.yml")
    status, _, _ = call("/update/latest-mac.yml", host="evil.example")
    assert status.startswith("400")


def test_a_feed_host_and_the_update_prefix_answer_alike(two_builds, settings):
    settings.FEED_HOSTS = ["feed.example.com"]
    on_host = call("/latest-mac.yml", host="feed.example.com")
    assert on_host == call("/latest-mac.yml", host="feed.example.com")
    assert on_host[2] == call("/update/latest-mac.yml")[2]


def test_changed_settings_are_not_answered_with_old_headers(two_builds, settings):
    call("/update/latest-mac.yml")
    call("/update/latest-mac.yml")
    settings.FEED_MANIFEST_CACHE_CONTROL = "public, max-age=7"
    _, headers, _ = call("/update/latest-mac.yml")
    assert dict(headers)["Cache-Control"] == "public, max-age=7"


def test_an_https_proxy_header_gets_its_own_answer(two_builds, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    app = FastLaneHandler()  # SecurityMiddleware reads its settings when it is loaded
    call("/update/latest-mac.yml", app=app)
    _, plain, _ = call("/update/latest-mac.yml", app=app)
    _, secure, _ = call("/update/latest-mac.yml", app=app, HTTP_X_FORWARDED_PROTO="https")
    assert call("/update/latest-mac.yml", app=app, HTTP_X_FORWARDED_PROTO="https")[1] == secure
    assert "Strict-Transport-Security" not in dict(plain)
    assert "Strict-Transport-Security" in dict(secure)


def test_every_replayed_poll_is_counted(two_builds, settings):
    settings.ADOPTION_COUNTING = True
    discard_pending()
    for _ in range(25):
        call("/update/latest-mac.yml", HTTP_X_USER_STAGING_ID=OUT_OF_COHORT)
    flush_now()
    polls = AdoptionCount.objects.filter(metric="poll", build_id="b1", platform="mac")
    assert sum(row.count for row in polls) == 25
