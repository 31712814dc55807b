"""Benchmark of the download links beside nginx (docs/budgets.md: ≥ 2,000 requests/s for
`/download/mac` with a browser User-Agent), in one run on this machine.

Starts the project under gunicorn and nginx over the same production directory (the helpers of
bench/harness.py), writes a production layout (desktop-*.json, the latest build's td manifest,
small installer files) and with wrk at 64 keep-alive connections measures `/download/mac` with
a Safari-on-macOS-14 User-Agent (rules → manifest → universal installer → the file) and its JSON
variant, against nginx serving the very file the link resolves to.

    .venv/bin/python bench/downloads.py [--duration 10]

bench/feed.py runs the same cases (bench/harness.py's `run_download_cases`) at the end of its
own run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    BUCKET,
    ensure_tools,
    free_port,
    prepare_downloads,
    print_setup,
    run_download_cases,
    start_gunicorn,
    start_nginx,
    wait_for,
)


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
            print_setup(args.duration)
            run_download_cases(ours_url, nginx_url, args.duration)
        finally:
            app.terminate()
            nginx.terminate()
            app.wait(timeout=30)
            nginx.wait(timeout=30)


if __name__ == "__main__":
    main()
