"""releases.integrations.todesktop against the fake ToDesktop origin (real HTTP on loopback)."""

from __future__ import annotations

import hashlib

import pytest

from releases.integrations import todesktop
from tests.fakes.todesktop_origin import FakeBuild, start_origin


@pytest.fixture
def origin(settings):
    server = start_origin(FakeBuild())
    settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    settings.HTTP_MAX_RETRIES = 3
    yield server
    server.stop()


def _exe(origin) -> str:
    return origin.build.layout["windows"]["nsis"]["x64"]


def test_it_takes_only_the_decoded_last_segment_of_a_manifest_url():
    url = "https://evil.example/x/My%20App%20Setup%201.2.0%20-%20Build%20abc-x64.exe?a=1#f"
    assert todesktop.file_name_from_url(url) == "My App Setup 1.2.0 - Build abc-x64.exe"


@pytest.mark.parametrize(
    "url",
    [
        "https://h/a/..%2F..%2Fetc%2Fpasswd",
        "https://h/a/..",
        "https://h/a/.",
        "https://h/a/",
        "https://h/a/evil%5C..%5Cx.exe",
        "https://h/a/nul%00.exe",
        "https://h/a/line%0Abreak.exe",
        "https://h/a/del%7F.exe",
        "https://h/a/" + "x" * 300,
        "",
    ],
)
def test_it_rejects_a_name_that_could_escape_the_build_prefix(url):
    with pytest.raises(todesktop.UnsafeFileName):
        todesktop.file_name_from_url(url)


def test_download_urls_always_use_the_configured_host(settings):
    settings.TODESKTOP_DOWNLOAD_BASE_URL = "http://origin.test"
    url = todesktop.file_url(app_id="app1", name="My App Setup 1.0 - Build b-x64.exe")
    assert url == "http://origin.test/app1/My%20App%20Setup%201.0%20-%20Build%20b-x64.exe"


def test_a_missing_manifest_is_none(origin):
    assert (
        todesktop.fetch_small(app_id=origin.build.app_id, name="td-latest-build-nope.json") is None
    )


def test_a_manifest_is_fetched_after_500s(origin):
    name = origin.build.td_name("mac")
    origin.fail(name, times=2)
    body = todesktop.fetch_small(app_id=origin.build.app_id, name=name)
    assert body == origin.documents[name]
    assert [entry.status for entry in origin.requested(name)] == [500, 500, 200]


def test_it_gives_up_after_its_retries(origin):
    name = origin.build.td_name("linux")
    origin.fail(name, times=10, status=503)
    with pytest.raises(todesktop.OriginUnavailable):
        todesktop.fetch_small(app_id=origin.build.app_id, name=name)
    assert len(origin.requested(name)) == 4  # one try + HTTP_MAX_RETRIES


def test_a_client_error_other_than_404_is_not_retried(origin):
    name = _exe(origin)
    origin.fail(name, times=5, status=403)
    with pytest.raises(todesktop.OriginError) as caught:
        todesktop.Download(app_id=origin.build.app_id, name=name)
    assert not isinstance(caught.value, todesktop.OriginUnavailable)
    assert len(origin.requested(name)) == 1


def test_a_dropped_body_is_resumed_with_a_range_request(settings):
    build = FakeBuild(size=1024 * 1024)
    origin = start_origin(build)
    settings.TODESKTOP_DOWNLOAD_BASE_URL = origin.url
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    name = _exe(origin)
    origin.drop(name, after=300 * 1024, times=2)
    download = todesktop.Download(app_id=build.app_id, name=name)
    data = b"".join(download.chunks())
    origin.stop()
    assert hashlib.sha256(data).hexdigest() == build.files[name].hashes["sha256"]
    ranges = [entry.range for entry in origin.requested(name)]
    assert len(ranges) == 3 and ranges[0] is None
    offsets = [int(r.removeprefix("bytes=").rstrip("-")) for r in ranges[1:]]
    assert 0 < offsets[0] < offsets[1] < build.files[name].size  # resumed, not restarted


def test_a_body_that_keeps_dropping_gives_up(origin):
    name = _exe(origin)
    origin.drop(name, after=10, times=50)
    download = todesktop.Download(app_id=origin.build.app_id, name=name)
    with pytest.raises(todesktop.OriginUnavailable):
        b"".join(download.chunks())


def test_the_fake_origin_serves_manifests_whose_hashes_match_its_files(origin):
    build = origin.build
    import json

    import yaml

    td = json.loads(origin.documents[build.td_name("windows")])
    entry = td["artifacts"]["nsis"]["x64"]
    content = build.files[_exe(origin)].content()
    assert hashlib.sha256(content).hexdigest() == entry["sha256"]
    assert len(content) == entry["size"]
    yml = yaml.safe_load(origin.documents[build.yml_name("windows")])
    assert yml["path"] == _exe(origin)
    assert {p["path"] for p in yml["packages"].values()} == set(
        build.layout["windows"]["nsis-web-7z"].values()
    )


@pytest.mark.parametrize(
    "base", ["http:///no-host", "ftp://todesktop.example", "http://127.0.0.1:99999"]
)
def test_a_request_that_cannot_be_made_is_an_origin_error_not_a_requests_one(settings, base):
    settings.TODESKTOP_DOWNLOAD_BASE_URL = base
    with pytest.raises(todesktop.OriginError) as raised:
        todesktop.fetch_small(app_id="app", name="latest.yml")
    assert not isinstance(raised.value, todesktop.OriginUnavailable)  # retrying cannot help
    assert "requests" not in type(raised.value).__module__
    with pytest.raises(todesktop.OriginError):
        todesktop.Download(app_id="app", name="latest.yml")
