# ruff: noqa: E501  (real User-Agent strings and table rows read best on one line)
"""Production data for the download-link tests: real User-Agents, manifests, builds, files.

`production_write(bucket)` lays out what promotion leaves in production (docs/bucket-layout.md,
docs/promotion.md): the
artifact files at the root, each build's td manifests, `desktop-builds.json` and
`desktop-releases.json`. Three builds:

- OLD  (1.1.0, released): mac dmg without a universal entry, the linux target of a
  `buildByPlatform` rule;
- LATEST (1.2.0, released, `latestReleaseBuildId`): every platform, the mac `installer`;
- UNRELEASED (1.3.0, `isReleased: false`, also the target of an IP rule for 127.0.0.1, the
  test client's address: download links must ignore it).
"""

from __future__ import annotations

import json
from urllib.parse import quote

from releases.integrations.buckets import Bucket

OLD = "241201old0build1"
LATEST = "250210vv2q75v93"
UNRELEASED = "250301unrel0001"
APP_ID = "200527auaqaacsy"

UA = {
    "chrome-win10": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    # Windows 11 still reports NT 10.0 in the User-Agent.
    "edge-win11": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
    "safari-10.14": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.1.2 Safari/605.1.15",
    "chrome-10.14": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36",
    "safari-10.15": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.6.1 Safari/605.1.15",
    "chrome-10.15": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
    # macOS 14: Safari and Chrome both freeze the version at 10_15_7.
    "safari-14": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "chrome-14": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "firefox-mac": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
    "firefox-mac-10.14": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.14; rv:115.0) Gecko/20100101 Firefox/115.0",
    "firefox-linux": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "firefox-ubuntu": "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "chromeos": "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "curl": "curl/8.5.0",
}  # fmt: skip

# Real ToDesktop-style file names (spaces and all), as staging stores them (docs/bucket-layout.md).
FILES = {
    "win-nsis-x64": f"Acme Setup 1.2.0 - Build {LATEST}-x64.exe",
    "win-nsis-arm64": f"Acme Setup 1.2.0 - Build {LATEST}-arm64.exe",
    "win-msi-x64": f"Acme 1.2.0 - Build {LATEST}-x64.msi",
    "mac-installer": f"Acme Installer - Build {LATEST}.dmg",
    "mac-dmg-universal": f"Acme 1.2.0 - Build {LATEST}-universal.dmg",
    "mac-dmg-x64": f"Acme 1.2.0 - Build {LATEST}-x64.dmg",
    "mac-dmg-arm64": f"Acme 1.2.0 - Build {LATEST}-arm64.dmg",
    "mac-zip-x64": f"Acme-1.2.0-build-{LATEST}-x64-mac.zip",
    "mac-zip-arm64": f"Acme-1.2.0-build-{LATEST}-arm64-mac.zip",
    "linux-appimage-x64": f"Acme-1.2.0-build-{LATEST}-x86_64.AppImage",
    "linux-deb-x64": f"acme_1.2.0-build-{LATEST}_amd64.deb",
    "old-mac-dmg-x64": f"Acme 1.1.0 - Build {OLD}-x64.dmg",
    "old-mac-dmg-arm64": f"Acme 1.1.0 - Build {OLD}-arm64.dmg",
    "old-win-nsis-x64": f"Acme Setup 1.1.0 - Build {OLD}-x64.exe",
    "old-linux-appimage-x64": f"Acme-1.1.0-build-{OLD}-x86_64.AppImage",
    "old-linux-deb-x64": f"acme_1.1.0-build-{OLD}_amd64.deb",
    "old-linux-deb-arm64": f"acme_1.1.0-build-{OLD}_arm64.deb",
    "old-linux-rpm-x64": f"acme-1.1.0-build-{OLD}.x86_64.rpm",
    "new-mac-dmg-universal": f"Acme 1.3.0 - Build {UNRELEASED}-universal.dmg",
    "new-win-nsis-x64": f"Acme Setup 1.3.0 - Build {UNRELEASED}-x64.exe",
}
# Listed in a manifest but never written: the link must answer 404, not 500.
MISSING = "win-msi-x64"


def body_of(name: str) -> bytes:
    """Distinct, deterministic bytes per file (so a test can tell which file it got)."""
    return (f"<{name}>" * 40).encode()


def entry(label: str, *, path: str | None = None) -> dict:
    name = FILES[label]
    item = {
        "url": f"https://download.todesktop.com/{APP_ID}/{quote(name)}",
        "sha256": "0" * 64,
        "size": len(body_of(name)),
    }
    if path is not None:
        item["path"] = path
    return item


def manifests() -> dict[str, dict]:
    latest_mac = {
        # `path` as a key that exists (the original reads it) and as a builder's local path.
        "installer": {"universal": entry("mac-installer", path=FILES["mac-installer"])},
        "dmg": {
            "universal": entry("mac-dmg-universal"),
            "x64": entry("mac-dmg-x64", path="/Users/ci/dist/" + FILES["mac-dmg-x64"]),
            "arm64": entry("mac-dmg-arm64"),
        },
        "zip": {"x64": entry("mac-zip-x64"), "arm64": entry("mac-zip-arm64")},
        "mas": None,
    }
    return {
        f"td-latest-build-{LATEST}.json": _manifest("1.2.0", {
            "nsis-web": None,
            "nsis": {"x64": entry("win-nsis-x64"), "arm64": entry("win-nsis-arm64")},
            "msi": {"x64": entry("win-msi-x64")},
            "appx": None,
        }),
        f"td-latest-mac-build-{LATEST}.json": _manifest("1.2.0", latest_mac),
        f"td-latest-linux-build-{LATEST}.json": _manifest("1.2.0", {
            "appImage": {"x64": entry("linux-appimage-x64")},
            "deb": {"x64": entry("linux-deb-x64")},
        }),
        f"td-latest-build-{OLD}.json": _manifest("1.1.0", {"nsis": {"x64": entry("old-win-nsis-x64")}}),
        f"td-latest-mac-build-{OLD}.json": _manifest("1.1.0", {
            "dmg": {"x64": entry("old-mac-dmg-x64"), "arm64": entry("old-mac-dmg-arm64")},
        }),
        f"td-latest-linux-build-{OLD}.json": _manifest("1.1.0", {
            "appImage": {"x64": entry("old-linux-appimage-x64")},
            "deb": {"x64": entry("old-linux-deb-x64"), "arm64": entry("old-linux-deb-arm64")},
            "rpm": {"x64": entry("old-linux-rpm-x64")},
            "snap": None,
        }),
        f"td-latest-mac-build-{UNRELEASED}.json": _manifest("1.3.0", {
            "dmg": {"universal": entry("new-mac-dmg-universal")},
        }),
        f"td-latest-build-{UNRELEASED}.json": _manifest("1.3.0", {
            "nsis": {"x64": entry("new-win-nsis-x64")},
        }),
    }  # fmt: skip


def _manifest(version: str, artifacts: dict) -> dict:
    return {"version": version, "createdAt": "2025-02-10T12:00:00.000Z", "artifacts": artifacts}


BUILDS = [
    {"id": OLD, "version": "1.1.0", "createdAt": "2024-12-01T10:00:00Z", "isReleased": True},
    {"id": LATEST, "version": "1.2.0", "createdAt": "2025-02-10T12:00:00Z", "isReleased": True},
    {"id": UNRELEASED, "version": "1.3.0", "createdAt": "2025-03-01T09:00:00Z", "isReleased": False},
]  # fmt: skip
RELEASES = {
    "latestReleaseBuildId": LATEST,
    "releaseRedirections": [
        {"rule": "buildByPlatform", "platforms": ["linux"], "buildId": OLD},
        {"rule": "buildByIp", "ipList": ["127.0.0.1", "::1"], "buildId": UNRELEASED},
    ],
}


def production_write(bucket: Bucket, *, releases: dict | None = RELEASES) -> None:
    """Write the files, the manifests, then the two control files (promotion's order)."""
    for label, name in FILES.items():
        if label != MISSING:
            bucket.write_bytes(name, body_of(name))
    for key, manifest in manifests().items():
        bucket.write_bytes(key, json.dumps(manifest, indent=2).encode())
    bucket.write_bytes("desktop-builds.json", json.dumps(BUILDS, indent=2).encode())
    if releases is not None:
        bucket.write_bytes("desktop-releases.json", json.dumps(releases, indent=2).encode())
