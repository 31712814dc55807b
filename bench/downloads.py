"""Benchmark of the download links beside nginx (docs/budgets.md: ≥ 2,000 requests/s for
`/download/mac` with a browser User-Agent), in one run on this machine.

Starts the project under gunicorn and nginx over the same production directory (the helpers of
bench/feed.py), writes a production layout (desktop-*.json, the latest build's td manifest,
small installer files) and with wrk at 64 keep-alive connections measures `/download/mac` with
a Safari-on-macOS-14 User-Agent (rules → manifest → universal installer → the file) and its JSON
variant, against nginx serving the very file the link resolves to.

    .venv/bin/python bench/downloads.py [--duration 10]

bench/feed.py runs the same cases at the end of its own run (its `run_downloads`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.feed import (  # noqa: E402
    BUCKET,
    CONNECTIONS,
    ensure_tools,
    free_port,
    row,
    start_gunicorn,
    start_nginx,
    wait_for,
)

SAFARI_14 = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Safari/605.1.15"
)
BUILD = "bmain"  # bench/feed.py's latest build: both benchmarks can share one bucket
INSTALLER = f"App Installer - Build {BUILD}.dmg"
FILES = {
    ("installer", "universal"): INSTALLER,
    ("dmg", "universal"): f"App 42.0.0 - Build {BUILD}-universal.dmg",
    ("dmg", "x64"): f"App 42.0.0 - Build {BUILD}-x64.dmg",
    ("dmg", "arm64"): f"App 42.0.0 - Build {BUILD}-arm64.dmg",
    ("zip", "x64"): f"App-42.0.0-build-{BUILD}-x64-mac.zip",
}
FILE_SIZE = 64 * 1024  # a download link's cost is the choice, not the bytes


def prepare_downloads(bucket_dir: Path) -> None:
    """The mac manifest of the latest build and its files; desktop-*.json if absent."""
    artifacts: dict = {}
    for (artifact, arch), name in FILES.items():
        (bucket_dir / name).write_bytes(os.urandom(FILE_SIZE))
        url = f"https://download.todesktop.com/app/{quote(name)}"
        artifacts.setdefault(artifact, {})[arch] = {"url": url, "size": FILE_SIZE}
    artifacts["mas"] = None
    manifest = {"version": "42.0.0", "createdAt": "2025-06-01T00:00:00Z", "artifacts": artifacts}
    (bucket_dir / f"td-latest-mac-build-{BUILD}.json").write_text(json.dumps(manifest))
    if not (bucket_dir / "desktop-releases.json").exists():
        releases = {"latestReleaseBuildId": BUILD, "releaseRedirections": []}
        (bucket_dir / "desktop-releases.json").write_text(json.dumps(releases))
    if not (bucket_dir / "desktop-builds.json").exists():
        builds = [{"id": BUILD, "version": "42.0.0", "createdAt": "2025", "isReleased": True}]
        (bucket_dir / "desktop-builds.json").write_text(json.dumps(builds))


def wrk(url: str, duration: int, headers: dict[str, str]) -> dict:
    """bench/feed.py's wrk measurement, with request headers (the User-Agent matters here)."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    timeouts = re.search(r"timeout (\d+)", out)

    def pct(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": pct("50"),
        "p99": pct("99"),
        "errors": sum(int(m.group(1)) for m in (errors, timeouts) if m),  # non-2xx + timeouts
    }


def check_resolves(ours: str) -> None:
    """Fail loudly if the link does not serve the installer (a fast 404 proves nothing)."""
    out = subprocess.run(
        ["curl", "-sf", "-A", SAFARI_14, "-H", "Accept: application/json", f"{ours}/download/mac"],
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    if not out or json.loads(out).get("fileName") != INSTALLER:
        sys.exit(f"/download/mac did not resolve to {INSTALLER!r}: {out!r}")


def run_download_cases(ours: str, nginx: str, duration: int) -> dict:
    check_resolves(ours)
    browser = {"User-Agent": SAFARI_14}
    as_json = {**browser, "Accept": "application/json"}
    resolved = f"{nginx}/{quote(INSTALLER)}"
    wrk(f"{ours}/download/mac", 2, browser)  # warm every worker
    link = wrk(f"{ours}/download/mac", duration, browser)
    row("/download/mac (Safari, macOS 14)", link, wrk(resolved, duration, browser))
    described = wrk(f"{ours}/download/mac", duration, as_json)
    row("/download/mac, Accept: JSON", described, wrk(resolved, duration, browser))
    verdict = "meets" if link["rps"] >= 2000 else "MISSES"
    print(f"/download/mac: {link['rps']:.0f} req/s {verdict} the 2,000 req/s budget", flush=True)
    return link


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    ensure_tools()
    with tempfile.TemporaryDirectory(prefix="bench-downloads-") as tmp:
        data_dir = Path(tmp)
        data_dir.chmod(0o755)  # nginx's workers run as www-data
        bucket_dir = data_dir / "buckets" / BUCKET
        bucket_dir.mkdir(parents=True)
        prepare_downloads(bucket_dir)
        ours_port, nginx_port = free_port(), free_port()
        app = start_gunicorn(data_dir, ours_port)
        nginx = start_nginx(data_dir, bucket_dir, nginx_port)
        ours_url, nginx_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{nginx_port}"
        try:
            wait_for(f"{ours_url}/update/my-ip", app)
            wait_for(f"{nginx_url}/desktop-builds.json", nginx)
            setup = "gunicorn -c selfhosted/gunicorn.conf.py (make run's settings, access log on)"
            print(f"{setup}, wrk -c{CONNECTIONS}, {args.duration}s per case, "
                  f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
            run_download_cases(ours_url, nginx_url, args.duration)
        finally:
            app.terminate()
            nginx.terminate()
            app.wait(timeout=30)
            nginx.wait(timeout=30)


if __name__ == "__main__":
    main()
