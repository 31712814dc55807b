"""Download links (docs/download-links.md), found in review: inputs that used to answer 5xx or the
wrong
redirect. Bad input is a clear 4xx; a manifest entry is read as far as it can be."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from releases.integrations import buckets
from tests.downloads_support import FILES, UA, body_of, production_write

SAFARI = UA["safari-14"]
DMG = FILES["mac-dmg-universal"]


@pytest.fixture
def production_data(fs_buckets):
    production_write(buckets.production(role="promoter"))


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def link(client, url: str, **headers):
    return client.get(url, HTTP_USER_AGENT=SAFARI, **headers)


def build_manifest_write(build_id: str, entry: dict) -> None:
    manifest = {"version": "1.2.0", "artifacts": {"dmg": {"universal": entry}}}
    bucket = buckets.production(role="promoter")
    bucket.write_bytes(f"td-latest-mac-build-{build_id}.json", json.dumps(manifest).encode())


# --- Names too long to be an object: absent, not a storage failure ------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/download/versions/" + "1" * 300,
        "/download/builds/" + "b" * 300 + "/mac",
        "/download/versions/" + "1" * 300 + "/windows/nsis/x64",
    ],
)
def test_a_version_or_build_too_long_for_a_file_name_is_a_404_not_a_503(
    client, production_data, url
):
    response = link(client, url)
    assert response.status_code == 404
    assert response.content.decode().startswith("Could not find: td-latest")
    described = link(client, url, HTTP_ACCEPT="application/json")
    assert described.status_code == 404
    assert described.json()["error"].startswith("Could not find: td-latest")


def test_an_entry_path_too_long_for_a_file_name_falls_back_to_its_url(client, production_data):
    entry = {"url": "https://download.todesktop.com/a/" + quote(DMG), "path": "p" * 300 + ".dmg"}
    build_manifest_write("longpath1", entry)
    response = link(client, "/download/builds/longpath1/mac")
    assert (response.status_code, content(response)) == (200, body_of(DMG))
    described = link(client, "/download/builds/longpath1/mac", HTTP_ACCEPT="application/json")
    assert described.json()["fileName"] == DMG


def test_an_entry_naming_only_a_too_long_file_is_a_404(client, production_data):
    build_manifest_write("longname1", {"url": "https://download.todesktop.com/a/" + "n" * 300})
    response = link(client, "/download/builds/longname1/mac")
    assert (response.status_code, response.content) == (404, b"Not Found")
    described = link(client, "/download/builds/longname1/mac", HTTP_ACCEPT="application/json")
    assert (described.status_code, described.json()) == (404, {"error": "Not Found"})


def test_an_entry_path_that_is_no_text_key_falls_back_to_its_url(client, production_data):
    # JSON allows a lone surrogate (`"\ud800"`); no storage can encode it as a key.
    entry = {"url": "https://download.todesktop.com/a/" + quote(DMG), "path": "\ud800.dmg"}
    build_manifest_write("surrogate1", entry)
    response = link(client, "/download/builds/surrogate1/mac")
    assert (response.status_code, content(response)) == (200, body_of(DMG))


# --- A URL that does not parse is no name, not a crash -----------------------------------------


def test_an_entry_url_that_does_not_parse_is_served_from_its_path(client, production_data):
    build_manifest_write("badurl1", {"url": "https://[broken/x.dmg", "path": DMG})
    response = link(client, "/download/builds/badurl1/mac")
    assert (response.status_code, content(response)) == (200, body_of(DMG))


def test_an_entry_with_only_a_url_that_does_not_parse_is_a_404(client, production_data):
    build_manifest_write("badurl2", {"url": "https://[broken/x.dmg"})
    response = link(client, "/download/builds/badurl2/mac")
    assert (response.status_code, response.content) == (404, b"Not Found")
    described = link(client, "/download/builds/badurl2/mac", HTTP_ACCEPT="application/json")
    assert (described.status_code, described.json()) == (404, {"error": "Not Found"})


# --- Trailing slash: the mount itself ---------------------------------------------------------


def test_a_doubled_slash_at_the_mount_redirects_to_the_mount(client, production_data, settings):
    response = link(client, "/download//?utm_source=site")
    assert (response.status_code, response["Location"]) == (301, "/download/?utm_source=site")
    settings.DOWNLOAD_HOSTS = ["dl.example.com"]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "dl.example.com"]
    # `%2F` reaches the view as `/` (the test client would read `//` as a host name).
    response = link(client, "/%2F", HTTP_HOST="dl.example.com")
    assert (response.status_code, response["Location"]) == (301, "/")
