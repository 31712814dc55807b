"""Review of the feed against docs/feed.md and the original desktop-cdn worker: edge cases."""

from __future__ import annotations

import pytest
from django.core.wsgi import get_wsgi_application
from django.test import RequestFactory

from cdn.serving import feed_filename
from tests.cdn_support import feed_url, publish


@pytest.fixture
def served(production):
    publish(production, files={"App-1.0.0-build-b1-x64.exe": b"exe"}, builds=[], releases={})
    return production


@pytest.mark.parametrize(
    "name",
    [
        "x" * 300 + ".exe",  # one path segment longer than a file name may be (255 bytes)
        "a/" * 520 + "x.exe",  # longer than any S3 key (1,024 bytes)
        "é" * 600 + ".yml",  # 1,204 bytes of UTF-8 in 604 characters
    ],
)
def test_a_name_too_long_to_exist_is_a_400_not_a_storage_error(client, served, name):
    response = client.get(feed_url(name))
    assert response.status_code == 400
    assert response.content == b"Bad Request: invalid path"


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("App Setup 1.0.0 - Build abc123.exe", "App Setup 1.0.0.exe"),
        ("App Setup 1.0.0 - Build abc123.exe.blockmap", "App Setup 1.0.0.exe.blockmap"),
        ("App 1.0.0 - Build abc123-arm64.dmg.blockmap", "App 1.0.0 - arm64.dmg.blockmap"),
    ],
)
def test_a_blockmap_name_drops_the_build_id_like_its_file(key, name):
    assert feed_filename(key) == name


def wsgi_call(method: str, path: str, **headers: str) -> tuple[str, dict[str, str], bytes]:
    """The project's WSGI application as a WSGI server calls it: status, headers, body bytes."""
    environ = RequestFactory().generic(method, path, **headers).environ
    answer: dict = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(response_headers)

    chunks = get_wsgi_application()(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return answer["status"], answer["headers"], data


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/update/App-1.0.0-build-b1-x64.exe", {}, "200"),
        ("/update/App-1.0.0-build-b1-x64.exe", {"HTTP_RANGE": "bytes=0-0"}, "206"),
        ("/update/App-1.0.0-build-b1-x64.exe", {"HTTP_RANGE": "bytes=9-"}, "416"),
        ("/update/missing.exe", {}, "404"),
        ("/update/my-ip", {}, "200"),
        ("/update/", {}, "400"),
        ("/update/a\\b.exe", {}, "400"),
    ],
)
def test_a_head_answer_carries_no_body_bytes(db, served, path, headers, status):
    got_status, got_headers, data = wsgi_call("HEAD", path, **headers)
    assert got_status.startswith(status)
    assert data == b""


@pytest.mark.parametrize("path", ["/update/a%0Ab.yml", "/update/%0A", "/update/latest.yml%0A"])
def test_a_line_break_in_the_path_is_the_feeds_own_400(client, served, path):
    response = client.get(path)
    assert response.status_code == 400
    assert response.content == b"Bad Request: invalid path"


def test_a_line_break_on_a_feed_host_is_the_feeds_own_400(client, served, settings):
    settings.FEED_HOSTS = ["feed.example.com"]
    settings.ALLOWED_HOSTS = ["feed.example.com"]
    response = client.get("/a%0Ab.yml", HTTP_HOST="feed.example.com")
    assert response.status_code == 400
    assert response.content == b"Bad Request: invalid path"
