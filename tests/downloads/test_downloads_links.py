# ruff: noqa: E501  (table rows read best on one line)
"""Download links over HTTP (docs/download-links.md): real User-Agents × routes × platforms ×
artifact names
× arches against production data written through releases.integrations.buckets, asserting the status, the
file served and its headers; every 400/404 message; XSS-shaped parameters."""

from __future__ import annotations

import pytest

from releases.integrations import buckets
from tests.downloads_support import FILES, LATEST, OLD, UA, UNRELEASED, body_of, production_write


@pytest.fixture
def production_data(fs_buckets):
    production_write(buckets.production(role="promoter"))


def get(client, url: str, ua: str | None, **headers):
    if ua is not None:
        headers["HTTP_USER_AGENT"] = UA.get(ua, ua)
    return client.get(url, **headers)


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_serves(response, label: str) -> None:
    name = FILES[label]
    assert response.status_code == 200, content(response)
    assert content(response) == body_of(name)
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response["Content-Length"] == str(len(body_of(name)))
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"].startswith('"')
    assert response["Last-Modified"].endswith("GMT")
    assert response["Cache-Control"] == "no-store"
    assert {"User-Agent", "Accept"} <= {v.strip() for v in response["Vary"].split(",")}


SERVED = [
    # The root route: everything from the User-Agent.
    ("chrome-win10", "/download/", "win-nsis-x64"),
    ("edge-win11", "/download/", "win-nsis-x64"),
    ("safari-10.14", "/download/", "mac-dmg-x64"),
    ("chrome-10.14", "/download/", "mac-dmg-x64"),
    ("firefox-mac-10.14", "/download/", "mac-dmg-x64"),
    ("safari-10.15", "/download/", "mac-installer"),
    ("chrome-10.15", "/download/", "mac-installer"),
    ("safari-14", "/download/", "mac-installer"),
    ("chrome-14", "/download/", "mac-installer"),
    ("firefox-mac", "/download/", "mac-installer"),
    # Linux latest follows the buildByPlatform rule to the old build.
    ("firefox-linux", "/download/", "old-linux-appimage-x64"),
    ("firefox-ubuntu", "/download/", "old-linux-appimage-x64"),
    ("chromeos", "/download/", "old-linux-appimage-x64"),
    ("curl", "/download/", "win-nsis-x64"),
    # A platform route: the platform from the URL, the arch still from the User-Agent.
    ("chrome-win10", "/download/mac", "mac-dmg-x64"),
    ("safari-14", "/download/mac", "mac-installer"),
    ("safari-10.14", "/download/mac", "mac-dmg-x64"),
    ("firefox-linux", "/download/mac", "mac-dmg-x64"),
    ("safari-14", "/download/windows", "win-nsis-x64"),
    ("chromeos", "/download/windows", "win-nsis-x64"),
    ("chrome-win10", "/download/linux", "old-linux-appimage-x64"),
    ("curl", "/download/linux", "old-linux-appimage-x64"),
    # Artifact names (any case), arches and fallbacks.
    ("safari-14", "/download/mac/dmg", "mac-dmg-universal"),
    ("safari-10.14", "/download/mac/dmg", "mac-dmg-x64"),
    ("safari-14", "/download/mac/DMG/arm64", "mac-dmg-arm64"),
    ("chrome-14", "/download/mac/dmg/x64", "mac-dmg-x64"),
    ("safari-14", "/download/mac/zip", "mac-zip-x64"),  # no universal zip: x64
    ("safari-14", "/download/mac/zip/arm64", "mac-zip-arm64"),
    ("chrome-10.14", "/download/mac/installer", "mac-dmg-x64"),  # not offered on 10.14
    ("safari-10.14", "/download/mac/installer/universal", "mac-installer"),
    ("safari-14", "/download/mac/pkg", "mac-installer"),  # pkg is no universal artifact
    ("safari-14", "/download/mac/Installer", "mac-installer"),
    ("edge-win11", "/download/windows/nsis", "win-nsis-x64"),
    ("edge-win11", "/download/windows/nsis/arm64", "win-nsis-arm64"),
    ("edge-win11", "/download/windows/dmg", "win-nsis-x64"),  # not a windows artifact
    ("firefox-linux", "/download/linux/appimage", "old-linux-appimage-x64"),
    ("firefox-linux", "/download/linux/AppImage/x64", "old-linux-appimage-x64"),
    ("firefox-linux", "/download/linux/deb", "old-linux-deb-x64"),
    ("firefox-linux", "/download/linux/deb/arm64", "old-linux-deb-arm64"),
    ("chromeos", "/download/linux/RPM", "old-linux-rpm-x64"),
    # Versions: the released build with that version; no installer by default; no rules.
    ("safari-14", "/download/versions/1.2.0", "mac-dmg-universal"),
    ("chrome-win10", "/download/versions/1.2.0", "win-nsis-x64"),
    ("curl", "/download/versions/1.2.0/linux", "linux-appimage-x64"),
    ("safari-14", "/download/versions/1.1.0/mac", "old-mac-dmg-x64"),  # no universal dmg
    ("safari-14", "/download/versions/1.1.0/mac/dmg/arm64", "old-mac-dmg-arm64"),
    ("safari-14", "/download/versions/1.2.0/mac/installer", "mac-installer"),  # by name
    ("firefox-linux", "/download/versions/1.1.0", "old-linux-appimage-x64"),
    # Builds: served as is, released or not (like the feed's -build- manifests).
    ("safari-14", f"/download/builds/{LATEST}", "mac-dmg-universal"),
    ("chrome-win10", f"/download/builds/{LATEST}", "win-nsis-x64"),
    ("safari-14", f"/download/builds/{OLD}/mac", "old-mac-dmg-x64"),
    ("curl", f"/download/builds/{OLD}/linux/deb/arm64", "old-linux-deb-arm64"),
    ("safari-14", f"/download/builds/{LATEST}/mac/installer", "mac-installer"),
    ("safari-14", f"/download/builds/{UNRELEASED}/mac", "new-mac-dmg-universal"),
    ("curl", f"/download/builds/{UNRELEASED}/windows", "new-win-nsis-x64"),
]


@pytest.mark.parametrize(("ua", "url", "label"), SERVED)
def test_a_link_serves_the_file_the_original_would_choose(client, production_data, ua, url, label):
    assert_serves(get(client, url, ua), label)


REFUSED = [
    # 400: the exact messages of the original (docs/download-links.md).
    ("safari-14", "/download/ios", 400, "Unsupported platform (ios)"),
    ("safari-14", "/download/Mac", 400, "Unsupported platform (Mac)"),
    ("safari-14", "/download/versions", 400, "Unsupported platform (versions)"),
    ("safari-14", "/download/builds", 400, "Unsupported platform (builds)"),
    ("safari-14", "/download/versions/1.2.0/beos", 400, "Unsupported platform (beos)"),
    ("safari-14", "/download/mac/dmg/x86", 400, "Unsupported architecture (x86)"),
    ("safari-14", "/download/windows/nsis/amd64", 400, "Unsupported architecture (amd64)"),
    ("safari-14", f"/download/builds/{LATEST}/mac/dmg/ppc", 400, "Unsupported architecture (ppc)"),
    (None, "/download/mac", 400, "No userAgent argument given"),
    (None, "/download/", 400, "No userAgent argument given"),
    ("", "/download/windows/nsis", 400, "No userAgent argument given"),
    # XSS-shaped parameters never reach a message.
    ("safari-14", "/download/mac%3Cscript%3Ealert(1)", 400, "URL is invalid (platform)"),
    # %2F becomes a path separator: two parameters, the artifact name is checked first.
    ("safari-14", "/download/mac%3Cscript%3Ealert(1)%3C%2Fscript%3E", 400, "URL is invalid (artifactName)"),
    ("safari-14", "/download/mac/%3Cimg%20src=x%20onerror=alert(1)%3E", 400, "URL is invalid (artifactName)"),
    ("safari-14", "/download/mac/dmg/x64%22%3E%3Csvg%20onload=alert(1)%3E", 400, "URL is invalid (arch)"),
    ("safari-14", "/download/versions/1.2.0%22%3E%3Cscript%3E/mac", 400, "URL is invalid (appVersion)"),
    ("safari-14", "/download/builds/abc_def", 400, "URL is invalid (buildId)"),
    ("safari-14", "/download/builds/javascript:alert(1)/mac", 400, "URL is invalid (buildId)"),
    ("safari-14", "/download/mac%00", 400, "URL is invalid (platform)"),
    ("safari-14", "/download/mac%zz", 400, "URL is invalid (platform)"),
    ("safari-14", "/download/%F0%9F%8D%8E", 400, "URL is invalid (platform)"),
    # 404: manifests, artifacts, arches and objects that are not there.
    ("safari-14", "/download/versions/9.9.9/windows", 404, "Could not find: td-latest-9.9.9.json"),
    ("safari-14", "/download/versions/1.3.0/mac", 404, "Could not find: td-latest-mac-1.3.0.json"),
    ("safari-14", "/download/versions/1.3.0", 404, "Could not find: td-latest-mac-1.3.0.json"),
    ("safari-14", "/download/builds/nope123/mac", 404, "Could not find: td-latest-mac-build-nope123.json and build ID nope123"),
    ("curl", f"/download/builds/{UNRELEASED}/linux", 404, f"Could not find: td-latest-linux-build-{UNRELEASED}.json and build ID {UNRELEASED}"),
    ("safari-14", "/download/mac/dmg/ia32", 404, "Couldn't find mac app (dmg-ia32)"),
    ("safari-14", f"/download/builds/{LATEST}/mac/dmg/ia32", 404, f"Couldn't find mac app (dmg-ia32) and build ID {LATEST}"),
    ("edge-win11", "/download/windows/nsis/ia32", 404, "Couldn't find windows app (nsis-ia32)"),
    ("edge-win11", "/download/windows/appx", 404, "Couldn't find windows app (appx-universal)"),
    ("edge-win11", "/download/windows/NSIS-WEB", 404, "Couldn't find windows app (nsis-web-universal)"),
    ("firefox-linux", "/download/linux/snap", 404, "Couldn't find linux app (snap-universal)"),
    ("firefox-linux", "/download/linux/deb/universal", 404, "Couldn't find linux app (deb-universal)"),
    ("safari-14", f"/download/builds/{UNRELEASED}/mac/zip", 404, "Couldn't find mac app (zip-universal) and build ID " + UNRELEASED),
    ("curl", f"/download/builds/{UNRELEASED}/windows/msi/x64", 404, f"Couldn't find windows app (msi-x64) and build ID {UNRELEASED}"),
    # Listed in the manifest, never written to production.
    ("edge-win11", "/download/windows/msi", 404, "Not Found"),
    # No route.
    ("safari-14", "/download/mac/dmg/x64/extra", 404, "not found"),
    ("safari-14", "/download/versions/1.2.0/mac/dmg/x64/extra", 404, "not found"),
    ("safari-14", "/download/builds/b1/mac/dmg/x64/extra", 404, "not found"),
]  # fmt: skip


@pytest.mark.parametrize(("ua", "url", "status", "message"), REFUSED)
def test_a_link_refuses_with_the_original_status_and_message(
    client, production_data, ua, url, status, message
):
    response = get(client, url, ua)
    assert (response.status_code, response.content.decode()) == (status, message)
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "<" not in response.content.decode()


def test_a_platform_without_any_artifact_in_a_build_manifest_is_a_404(client, production_data):
    bucket = buckets.production(role="promoter")
    bucket.write_bytes("td-latest-linux-build-empty1.json", b'{"version":"1.0.0","artifacts":{}}')
    response = get(client, "/download/builds/empty1/linux", "curl")
    assert (response.status_code, response.content) == (404, b"Couldn't find linux app")


def test_a_manifest_that_is_not_json_is_a_404_not_a_500(client, production_data):
    buckets.production(role="promoter").write_bytes("td-latest-mac-build-broken1.json", b"{")
    response = get(client, "/download/builds/broken1/mac", "safari-14")
    assert response.status_code == 404
    assert (
        response.content == b"Could not find: td-latest-mac-build-broken1.json and build ID broken1"
    )


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("/download/mac/", "/download/mac"),
        ("/download/mac/dmg/arm64/", "/download/mac/dmg/arm64"),
        (f"/download/builds/{LATEST}/", f"/download/builds/{LATEST}"),
        (
            "/download/versions/1.2.0/mac/?utm_source=site",
            "/download/versions/1.2.0/mac?utm_source=site",
        ),
        ("/download/anything/at/all/", "/download/anything/at/all"),
        ("/download/My%20App/", "/download/My%20App"),
    ],
)
def test_a_trailing_slash_redirects_permanently_to_the_url_without_it(client, url, location):
    response = client.get(url, HTTP_USER_AGENT=UA["safari-14"])
    assert response.status_code == 301
    assert response["Location"] == location


def test_the_root_route_is_not_a_trailing_slash_redirect(client, production_data):
    assert_serves(get(client, "/download/", "safari-14"), "mac-installer")


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_other_methods_get_405(client, production_data, method):
    response = getattr(client, method)("/download/mac", HTTP_USER_AGENT=UA["safari-14"])
    assert response.status_code == 405
    assert sorted(response["Allow"].split(", ")) == ["GET", "HEAD"]
