"""The feed under gunicorn (as deployed): raw request lines, sendfile, keep-alive ranges."""

from __future__ import annotations

import http.client
import os

import pytest

from tests.cdn_support import build, start_live_server

pytestmark = [pytest.mark.slow]  # starts gunicorn

BIG = os.urandom(3 * 1024 * 1024 + 17)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = start_live_server(tmp_path_factory.mktemp("live-feed"))
    server.publish(
        files={"App-1.0.0-build-b1-x64.exe": BIG, "latest-build-b1.yml": b"version: 1.0.0\n"},
        builds=[build("b1", "1.0.0")],
        releases={"latestReleaseBuildId": "b1"},
    )
    yield server
    server.stop()


def raw_get(live, path: str, headers: dict | None = None, method: str = "GET"):
    host, port = live.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest(method, path, skip_accept_encoding=True)
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


@pytest.mark.parametrize("path", ["/update/%zz.yml", "/update/a%E0%A4%A.yml", "/update/%FF.exe"])
def test_a_malformed_percent_escape_is_a_400(live, path):
    response, data = raw_get(live, path)
    assert response.status == 400
    assert b"percent" in data


def test_the_latest_manifest_resolves_under_gunicorn(live):
    response, data = raw_get(live, "/update/latest.yml?noCache=abc")
    assert response.status == 200
    assert data == b"version: 1.0.0\n"


def test_a_whole_file_is_sent_intact(live):
    response, data = raw_get(live, "/update/App-1.0.0-build-b1-x64.exe")
    assert response.status == 200
    assert int(response.getheader("Content-Length")) == len(BIG)
    assert data == BIG
    assert response.getheader("Content-Disposition") == 'attachment; filename="App-1.0.0-x64.exe"'


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [("bytes=1000-2000999", 1000, 2001000), ("bytes=-5", len(BIG) - 5, len(BIG))],
)
def test_a_single_range_is_sent_exactly(live, header, start, stop):
    response, data = raw_get(live, "/update/App-1.0.0-build-b1-x64.exe", {"Range": header})
    assert response.status == 206
    assert data == BIG[start:stop]
    assert response.getheader("Content-Range") == f"bytes {start}-{stop - 1}/{len(BIG)}"


def test_ranges_on_one_keep_alive_connection_stay_in_step(live):
    host, port = live.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    for start in (0, 5000, 2_000_000, 100):
        headers = {"Range": f"bytes={start}-{start + 99999}"}
        connection.request("GET", "/update/App-1.0.0-build-b1-x64.exe", headers=headers)
        response = connection.getresponse()
        assert response.status == 206
        assert response.read() == BIG[start : start + 100000]
    connection.close()


def test_a_head_sends_headers_only(live):
    response, data = raw_get(live, "/update/App-1.0.0-build-b1-x64.exe", method="HEAD")
    assert response.status == 200
    assert data == b""
    assert int(response.getheader("Content-Length")) == len(BIG)


def test_a_multi_range_answer_has_its_announced_length(live):
    headers = {"Range": "bytes=0-9,1000000-1999999,-10"}
    response, data = raw_get(live, "/update/App-1.0.0-build-b1-x64.exe", headers)
    assert response.status == 206
    assert int(response.getheader("Content-Length")) == len(data)
    assert BIG[1000000:2000000] in data


def test_promotion_is_visible_to_another_process(live):
    live.publish(
        files={"latest-build-b2.yml": b"version: 2.0.0\n"},
        builds=[build("b1", "1.0.0"), build("b2", "2.0.0")],
        releases={"latestReleaseBuildId": "b2"},
    )
    # No invalidation reached the gunicorn process: it noticed the new ETags by itself.
    response, data = raw_get(live, "/update/latest.yml")
    assert data == b"version: 2.0.0\n"
