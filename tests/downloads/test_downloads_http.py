"""Download links behave like the feed for HTTP (HEAD, ranges, conditionals), follow the
rules the feed follows except IP rules, see promotions, and work at `/` of DOWNLOAD_HOSTS."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest

from cdn.metadata import metadata_invalidate
from releases.integrations import buckets
from tests.buckets_support import s3_storages
from tests.downloads_support import (
    FILES,
    LATEST,
    OLD,
    UA,
    UNRELEASED,
    body_of,
    manifests,
    production_write,
)

SAFARI = UA["safari-14"]
INSTALLER = FILES["mac-installer"]


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def link(client, url="/download/mac", **headers):
    return client.get(url, HTTP_USER_AGENT=SAFARI, **headers)


def feed(client, name: str, **headers):
    return client.get("/update/" + quote(name), HTTP_USER_AGENT=SAFARI, **headers)


def test_head_answers_the_headers_of_get_without_a_body(client, production_data):
    got = link(client)
    head = client.head("/download/mac", HTTP_USER_AGENT=SAFARI)
    assert head.status_code == 200
    assert content(head) == b""
    for name in ("Content-Length", "ETag", "Last-Modified", "Content-Type", "Accept-Ranges"):
        assert head[name] == got[name]
    assert head["Content-Disposition"] == f'attachment; filename="{INSTALLER}"'


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_RANGE": "bytes=0-9"},
        {"HTTP_RANGE": "bytes=-7"},
        {"HTTP_RANGE": "bytes=100-"},
        {"HTTP_RANGE": "bytes=0-1,5-6,-3"},
        {"HTTP_RANGE": "bytes=999999-"},
        {"HTTP_RANGE": "lines=1-2"},
        {"HTTP_RANGE": "bytes=0-9", "HTTP_IF_RANGE": '"not-the-etag"'},
    ],
)
def test_a_range_request_on_a_link_answers_like_the_feed(client, production_data, headers):
    via_link, via_feed = link(client, **headers), feed(client, INSTALLER, **headers)
    assert via_link.status_code == via_feed.status_code
    assert via_link.get("Content-Range") == via_feed.get("Content-Range")
    if via_link.status_code in (200, 206):
        assert via_link["Content-Length"] == via_feed["Content-Length"]
    if via_link.status_code == 206 and ";" not in via_link["Content-Type"]:
        assert content(via_link) == content(via_feed)
    if "," in headers["HTTP_RANGE"]:
        assert via_link["Content-Type"].startswith("multipart/byteranges; boundary=")


def test_a_single_range_returns_exactly_those_bytes(client, production_data):
    response = link(client, HTTP_RANGE="bytes=2-11")
    size = len(body_of(INSTALLER))
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 2-11/{size}"
    assert content(response) == body_of(INSTALLER)[2:12]


def test_conditional_requests_on_a_link_answer_like_the_feed(client, production_data):
    etag = link(client)["ETag"]
    last_modified = link(client)["Last-Modified"]
    for headers, status in (
        ({"HTTP_IF_NONE_MATCH": etag}, 304),
        ({"HTTP_IF_NONE_MATCH": f'W/{etag}, "other"'}, 304),
        ({"HTTP_IF_MODIFIED_SINCE": last_modified}, 304),
        ({"HTTP_IF_MATCH": '"other"'}, 412),
        ({"HTTP_IF_RANGE": etag, "HTTP_RANGE": "bytes=0-0"}, 206),
    ):
        via_link, via_feed = link(client, **headers), feed(client, INSTALLER, **headers)
        assert via_link.status_code == via_feed.status_code == status
    not_modified = link(client, HTTP_IF_NONE_MATCH=etag)
    assert not_modified["ETag"] == etag
    assert not_modified["Cache-Control"] == "no-store"


def test_a_link_keeps_the_build_id_in_the_file_name_where_the_feed_drops_it(
    client, production_data
):
    name = FILES["mac-dmg-universal"]
    assert link(client, "/download/mac/dmg")["Content-Disposition"] == (
        f'attachment; filename="{name}"'
    )
    assert (
        feed(client, name)["Content-Disposition"]
        == 'attachment; filename="Acme 1.2.0 - universal.dmg"'
    )


def test_a_build_by_platform_rule_is_honoured_and_an_ip_rule_is_not(client, production_data):
    # The test client's address, 127.0.0.1, is in the buildByIp rule's list…
    rules_feed = client.get("/update/td-latest.json", REMOTE_ADDR="127.0.0.1")
    assert json.loads(content(rules_feed))["version"] == "1.3.0"  # …and the feed obeys it,
    response = client.get("/download/windows", HTTP_USER_AGENT=SAFARI, REMOTE_ADDR="127.0.0.1")
    assert content(response) == body_of(FILES["win-nsis-x64"])  # the link does not.
    linux = client.get("/download/linux", HTTP_USER_AGENT=SAFARI, REMOTE_ADDR="127.0.0.1")
    assert content(linux) == body_of(FILES["old-linux-appimage-x64"])  # buildByPlatform → OLD


def test_a_build_route_works_when_desktop_releases_json_is_missing(client, fs_buckets):
    production_write(buckets.production(role="promoter"), releases=None)
    assert content(link(client, f"/download/builds/{OLD}/mac")) == body_of(FILES["old-mac-dmg-x64"])
    assert content(link(client, "/download/versions/1.2.0/mac/dmg")) == body_of(
        FILES["mac-dmg-universal"]
    )
    # No rules, so no latest build: the plain channel manifest is looked up and is absent.
    latest = link(client, "/download/mac")
    assert (latest.status_code, latest.content) == (404, b"Could not find: td-latest-mac.json")


def test_a_rewritten_manifest_is_read_again_once_production_changes(client, production_data):
    assert content(link(client)) == body_of(INSTALLER)
    manifest = manifests()[f"td-latest-mac-build-{LATEST}.json"]
    del manifest["artifacts"]["installer"]
    bucket = buckets.production(role="promoter")
    bucket.write_bytes(f"td-latest-mac-build-{LATEST}.json", json.dumps(manifest).encode())
    # A name with a build id never changes once promoted: the decision is kept in memory…
    assert content(link(client)) == body_of(INSTALLER)
    metadata_invalidate()  # …until production changes (what every promotion does)
    assert content(link(client)) == body_of(FILES["mac-dmg-universal"])


def test_a_promotion_that_moves_latest_is_seen_by_the_next_request(client, production_data):
    bucket = buckets.production(role="promoter")
    bucket.write_bytes("desktop-releases.json", json.dumps({"latestReleaseBuildId": OLD}).encode())
    metadata_invalidate()
    assert content(link(client, "/download/windows")) == body_of(FILES["old-win-nsis-x64"])


# --- The JSON variant -------------------------------------------------------------------------


def test_json_describes_the_file_a_link_resolves_to(client, production_data):
    response = link(client, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Accept" in response["Vary"]
    assert response.json() == {
        "fileName": INSTALLER,
        "version": "1.2.0",
        "size": len(body_of(INSTALLER)),
        "url": f"http://testserver/download/builds/{LATEST}/mac/installer/universal",
        "platform": "mac",
        "artifactName": "installer",
        "arch": "universal",
        "buildId": LATEST,
        "createdAt": "2025-02-10T12:00:00.000Z",
        "sha256": "0" * 64,
    }


def test_the_json_url_serves_exactly_the_described_file_whatever_the_browser(
    client, production_data
):
    described = link(client, "/download/mac/zip", HTTP_ACCEPT="application/json").json()
    assert (described["arch"], described["fileName"]) == ("x64", FILES["mac-zip-x64"])
    response = client.get(described["url"], HTTP_USER_AGENT=UA["chrome-win10"])
    body = content(response)
    assert body == body_of(described["fileName"])
    assert len(body) == described["size"]


def test_json_for_a_version_route_pins_the_build_of_that_version(client, production_data):
    described = link(client, "/download/versions/1.1.0/linux", HTTP_ACCEPT="application/json")
    assert described.json()["url"] == (
        f"http://testserver/download/builds/{OLD}/linux/appImage/x64"
    )


def test_json_errors_carry_the_same_status_and_message(client, production_data):
    response = link(client, "/download/ios", HTTP_ACCEPT="application/json")
    assert (response.status_code, response.json()) == (400, {"error": "Unsupported platform (ios)"})
    response = link(client, "/download/versions/9.9.9/mac", HTTP_ACCEPT="application/json")
    assert (response.status_code, response.json()) == (
        404,
        {"error": "Could not find: td-latest-mac-9.9.9.json"},
    )


@pytest.mark.parametrize(
    "accept",
    [
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # a browser
        "*/*",
        "application/json;q=0",
        "",
    ],
)
def test_anything_but_an_explicit_json_accept_gets_the_file(client, production_data, accept):
    assert content(link(client, HTTP_ACCEPT=accept)) == body_of(INSTALLER)


def test_json_is_chosen_among_other_types_and_works_with_head(client, production_data):
    accept = "text/plain;q=0.5, Application/JSON"
    assert link(client, HTTP_ACCEPT=accept).json()["fileName"] == INSTALLER
    head = client.head("/download/mac", HTTP_USER_AGENT=SAFARI, HTTP_ACCEPT=accept)
    assert head.status_code == 200


# --- DOWNLOAD_HOSTS: the same routes at `/` ------------------------------------------------------


@pytest.fixture
def download_host(settings, production_data):
    settings.DOWNLOAD_HOSTS = ["dl.example.com"]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "dl.example.com"]
    return {"HTTP_HOST": "dl.example.com", "HTTP_USER_AGENT": SAFARI}


def test_a_download_host_serves_every_route_at_the_root(client, download_host):
    assert content(client.get("/", **download_host)) == body_of(INSTALLER)
    assert content(client.get("/mac/dmg/arm64", **download_host)) == body_of(FILES["mac-dmg-arm64"])
    assert content(client.get("/versions/1.1.0/mac", **download_host)) == body_of(
        FILES["old-mac-dmg-x64"]
    )
    response = client.get(f"/builds/{LATEST}/windows/nsis/arm64", **download_host)
    assert content(response) == body_of(FILES["win-nsis-arm64"])
    bad = client.get("/ios", **download_host)
    assert (bad.status_code, bad.content) == (400, b"Unsupported platform (ios)")
    assert client.get("/mac/dmg/x64/more", **download_host).status_code == 404


def test_a_download_host_redirects_a_trailing_slash_without_leaving_the_host(client, download_host):
    assert client.get("/mac/", **download_host)["Location"] == "/mac"
    # The test client would read `//evil.example/` as a host name; %2F reaches the view as `/`.
    assert client.get("/%2Fevil.example/", **download_host)["Location"] == "/evil.example"
    assert client.get("/%2F%2Fevil.example%2F/", **download_host)["Location"] == "/evil.example/"


def test_json_on_a_download_host_links_at_the_root(client, download_host):
    response = client.get("/mac", HTTP_ACCEPT="application/json", **download_host)
    assert response.json()["url"] == (
        f"http://dl.example.com/builds/{LATEST}/mac/installer/universal"
    )


# --- S3 ----------------------------------------------------------------------------------------


@pytest.mark.s3
def test_links_serve_from_an_s3_production_bucket(client, s3_buckets):
    production_write(buckets.production(role="promoter"))
    assert content(link(client)) == body_of(INSTALLER)
    ranged = link(client, "/download/linux/deb/arm64", HTTP_RANGE="bytes=1-4")
    assert (ranged.status_code, content(ranged)) == (
        206,
        body_of(FILES["old-linux-deb-arm64"])[1:5],
    )
    described = link(client, f"/download/builds/{UNRELEASED}", HTTP_ACCEPT="application/json")
    assert described.json()["fileName"] == FILES["new-mac-dmg-universal"]
    missing = link(client, "/download/windows/msi")
    assert (missing.status_code, missing.content) == (404, b"Not Found")
    unknown = link(client, "/download/versions/2.0.0/mac")
    assert unknown.content == b"Could not find: td-latest-mac-2.0.0.json"


def test_an_entry_path_that_exists_is_served_before_the_name_in_its_url(client, production_data):
    bucket = buckets.production(role="promoter")
    bucket.write_bytes("mirror/Acme.dmg", b"stored under path")
    url_name = FILES["mac-dmg-universal"]
    for build_id, path, body, name in (
        ("pathy1", "mirror/Acme.dmg", b"stored under path", "Acme.dmg"),
        ("pathy2", "mirror/absent.dmg", body_of(url_name), url_name),
        ("pathy3", "../escape.dmg", body_of(url_name), url_name),
    ):
        entry = {"url": "https://download.todesktop.com/a/" + quote(url_name), "path": path}
        manifest = {"version": "1.2.0", "artifacts": {"dmg": {"universal": entry}}}
        bucket.write_bytes(f"td-latest-mac-build-{build_id}.json", json.dumps(manifest).encode())
        response = link(client, f"/download/builds/{build_id}/mac")
        assert content(response) == body
        assert response["Content-Disposition"] == f'attachment; filename="{name}"'


class DenyingS3(BaseHTTPRequestHandler):
    """An S3 endpoint whose key lacks read permission: 403 AccessDenied for everything."""

    def _deny(self) -> None:
        body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = _deny

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def denying_storage(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), DenyingS3)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    s3_storages(settings, f"http://127.0.0.1:{server.server_port}", key="no")
    yield
    server.shutdown()
    server.server_close()


@pytest.mark.slow  # starts a denying storage server
def test_a_storage_that_refuses_access_is_a_503_not_a_500(client, denying_storage):
    response = link(client)
    assert (response.status_code, response.content) == (503, b"Storage unavailable")
    described = link(client, HTTP_ACCEPT="application/json")
    assert (described.status_code, described.json()) == (503, {"error": "Storage unavailable"})


@pytest.mark.parametrize(
    "url", ["/download/builds/../mac", "/download/./mac", "/download/versions/1.0.0/../../mac"]
)
def test_dot_segments_are_removed_so_the_link_serves_like_its_plain_path(
    client, production_data, url
):
    plain, dotted = link(client), link(client, url)
    assert dotted.status_code == 200
    assert dotted["Content-Disposition"] == plain["Content-Disposition"]
    assert content(dotted) == content(plain)


def test_dot_segments_on_a_download_host(client, production_data, settings):
    settings.DOWNLOAD_HOSTS = settings.ALLOWED_HOSTS = ["download.example.com"]
    response = link(client, "/builds/../mac", HTTP_HOST="download.example.com")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{INSTALLER}"'
