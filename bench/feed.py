"""Benchmark of the update feed beside nginx (docs/budgets.md), in one run on this machine.

Starts the project under gunicorn and nginx over the same production directory, then with wrk
at 64 keep-alive connections measures: a rule-resolved `latest-mac.yml`, a versioned manifest
with 10 and with 100,000 builds in desktop-builds.json, and a 1 GiB download (MB/s, curl).
nginx serves the file each feed request resolves to, so every ratio compares like with like.

    .venv/bin/python bench/feed.py [--duration 10] [--adoption-only]

Then the feed alone with adoption counting off and on (README: Adoption), in the same run.

Installs Debian's nginx and wrk with apt-get when they are missing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    BUCKET,
    ROOT,
    ensure_tools,
    free_port,
    prepare_downloads,
    prepare_small,
    print_setup,
    row,
    run_download_cases,
    start_gunicorn,
    start_nginx,
    wait_for,
    write_builds,
    wrk,
)

GIB = 1024**3


def prepare(data_dir: Path) -> Path:
    bucket_dir = prepare_small(data_dir)
    block = os.urandom(1024 * 1024)
    with open(bucket_dir / "App-42.0.0-build-bmain-x64.exe", "wb") as handle:
        for _ in range(GIB // len(block)):
            handle.write(block)
    return bucket_dir


def download_mbps(url: str, runs: int = 3) -> float:
    best = 0.0
    for _ in range(runs):
        out = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        size, seconds = int(out[0]), float(out[1])
        if size != GIB:
            sys.exit(f"{url}: downloaded {size} bytes, expected {GIB}")
        best = max(best, size / seconds / 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument(
        "--adoption-only", action="store_true", help="only adoption counting off vs on"
    )
    args = parser.parse_args()
    ensure_tools()
    with tempfile.TemporaryDirectory(prefix="bench-feed-") as tmp:
        data_dir = Path(tmp)
        data_dir.chmod(0o755)  # nginx's workers run as www-data
        print("preparing production data (1 GiB file) …", flush=True)
        bucket_dir = prepare(data_dir)
        if args.adoption_only:
            run_adoption(data_dir, args)
            return
        ours_port, nginx_port = free_port(), free_port()
        app = start_gunicorn(data_dir, ours_port)
        nginx = start_nginx(data_dir, bucket_dir, nginx_port)
        ours_url, nginx_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{nginx_port}"
        try:
            wait_for(f"{ours_url}/update/my-ip", app)
            wait_for(f"{nginx_url}/desktop-builds.json", nginx)
            print_setup(args.duration)
            run_cases(ours_url, nginx_url, bucket_dir, args.duration)
            run_downloads(ours_url, nginx_url, bucket_dir, args.duration)
            app.terminate()
            app.wait(timeout=30)
            run_ceiling(data_dir, nginx_url, args.duration)
        finally:
            app.terminate()
            nginx.terminate()
            app.wait(timeout=30)
            nginx.wait(timeout=30)
        run_adoption(data_dir, args)


STAGING_HEADER = {"x-user-staging-id": "3b0c6b52-1d7e-4e8a-9c41-00004ccccccc"}


def run_adoption(data_dir: Path, args) -> None:
    """The feed with adoption counting off and on, in turns (off, on, on, off, off, on) so that a
    drift of the machine's load hits both alike; a 25% rollout rule is evaluated on every poll."""
    releases = json.loads((data_dir / "buckets" / BUCKET / "desktop-releases.json").read_text())
    rule = {"rule": "buildByPercentage", "buildId": "bmain", "percentage": 25}
    releases["releaseRedirections"].append(rule)
    (data_dir / "buckets" / BUCKET / "desktop-releases.json").write_text(json.dumps(releases))
    env = {**os.environ, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING",
           "DATABASE_URL": f"sqlite:///{data_dir / 'db.sqlite3'}"}  # fmt: skip
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    for order in (("off", "on"), ("on", "off"), ("off", "on")):
        for mode in order:
            port = free_port()
            # The product's flush interval unless the caller sets one (a shorter one adds
            # flushes: ADOPTION_FLUSH_SECONDS=2 measures the worst case).
            flush = os.environ.get("ADOPTION_FLUSH_SECONDS", "10")
            flags = {"ADOPTION_COUNTING": "true" if mode == "on" else "false",
                     "ADOPTION_FLUSH_SECONDS": flush}  # fmt: skip
            app = start_gunicorn(data_dir, port, **flags)
            try:
                url = f"http://127.0.0.1:{port}/update/latest-mac.yml"
                wait_for(url, app)
                wrk(url, 2, STAGING_HEADER)
                runs[mode].append(wrk(url, args.duration, STAGING_HEADER))
            finally:
                app.terminate()
                app.wait(timeout=30)
    for mode in ("off", "on"):
        for result in runs[mode]:
            print(f"latest-mac.yml, 25% rollout, counting {mode:<3} {result['rps']:>7.0f} req/s "
                  f"p50 {result['p50']:>5.2f} ms p99 {result['p99']:>6.2f} ms "
                  f"errors {result['errors']}", flush=True)  # fmt: skip
    # Each "on" run against the "off" run beside it in time, so a drift of the machine's load
    # hits both sides of a ratio alike; the median of the three.
    ratios = sorted(on["rps"] / off["rps"] for off, on in zip(runs["off"], runs["on"], strict=True))
    print(
        f"adoption counting on keeps {ratios[1]:.1%} of the throughput (median of three "
        f"side-by-side pairs: {', '.join(f'{ratio:.1%}' for ratio in ratios)})",
        flush=True,
    )


def run_ceiling(data_dir: Path, nginx: str, duration: int) -> None:
    """The same gunicorn settings with an application that does nothing: the server's ceiling."""
    port = free_port()
    app = start_gunicorn(data_dir, port, "bench.trivial_wsgi:application")
    try:
        wait_for(f"http://127.0.0.1:{port}/", app)
        wrk(f"http://127.0.0.1:{port}/", 2)
        row("gunicorn alone (trivial WSGI app)", wrk(f"http://127.0.0.1:{port}/", duration),
            wrk(f"{nginx}/latest-mac-build-bmain.yml", duration))  # fmt: skip
    finally:
        app.terminate()
        app.wait(timeout=30)


def run_cases(ours: str, nginx: str, bucket_dir: Path, duration: int) -> None:
    resolved = f"{nginx}/latest-mac-build-bmain.yml"
    wrk(f"{ours}/update/latest-mac.yml", 2)  # warm every worker
    row(
        "latest-mac.yml (rules)",
        wrk(f"{ours}/update/latest-mac.yml", duration),
        wrk(resolved, duration),
    )
    versioned_10 = wrk(f"{ours}/update/latest-mac-42.0.0.yml", duration)
    row("latest-mac-42.0.0.yml, 10 builds", versioned_10, wrk(resolved, duration))
    write_builds(bucket_dir, 100_000)
    time.sleep(2.5)  # the feed notices the new ETag within a second, then reloads once
    wrk(f"{ours}/update/latest-mac-42.0.0.yml", 2)
    versioned_100k = wrk(f"{ours}/update/latest-mac-42.0.0.yml", duration)
    row("latest-mac-42.0.0.yml, 100,000 builds", versioned_100k, wrk(resolved, duration))
    print(f"100,000 vs 10 builds: {versioned_100k['rps'] / versioned_10['rps']:.2f}× the req/s, "
          f"p99 {versioned_100k['p99'] / versioned_10['p99']:.2f}×", flush=True)  # fmt: skip
    ours_mbps = download_mbps(f"{ours}/update/App-42.0.0-build-bmain-x64.exe")
    nginx_mbps = download_mbps(f"{nginx}/App-42.0.0-build-bmain-x64.exe")
    print(f"{'1 GiB download':<34} {ours_mbps:>9.0f} MB/s | nginx {nginx_mbps:>9.0f} MB/s "
          f"({ours_mbps / nginx_mbps:.2f}×)", flush=True)  # fmt: skip


def run_downloads(ours: str, nginx: str, bucket_dir: Path, duration: int) -> None:
    """The download-link budget of docs/budgets.md in the same run (the cases of
    bench/downloads.py, in bench/harness.py)."""
    prepare_downloads(bucket_dir)
    run_download_cases(ours, nginx, duration)


if __name__ == "__main__":
    main()
