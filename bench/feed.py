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
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "desktop-app-distributables"
CONNECTIONS = 64
GIB = 1024**3


def ensure_tools() -> None:
    missing = [tool for tool in ("nginx", "wrk", "curl") if not shutil.which(tool)]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get …", flush=True)
        subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{process.args[0]} exited with {process.returncode}")
        if subprocess.run(["curl", "-sf", "-o", "/dev/null", url]).returncode == 0:
            return
        time.sleep(0.2)
    sys.exit(f"{url} did not answer within 60 s")


def write_builds(bucket_dir: Path, count: int) -> None:
    builds = [
        {"id": f"b{i:07d}", "version": f"{i // 10000}.{i // 100 % 100}.{i % 100}",
         "createdAt": "2025-01-01T00:00:00.000Z", "isReleased": True}
        for i in range(count)
    ]  # fmt: skip
    # Last in the list: the original's linear search paid the most for it.
    last = {"id": "bmain", "version": "42.0.0", "createdAt": "2025-06-01", "isReleased": True}
    builds.append(last)
    (bucket_dir / "desktop-builds.json").write_text(json.dumps(builds))


def prepare_small(data_dir: Path) -> Path:
    """The manifests and both control files (10 builds)."""
    bucket_dir = data_dir / "buckets" / BUCKET
    bucket_dir.mkdir(parents=True, exist_ok=True)
    yml = b"version: 42.0.0\nfiles:\n  - url: App-42.0.0-mac.zip\n    sha512: x\n    size: 1\n"
    (bucket_dir / "latest-mac-build-bmain.yml").write_bytes(yml * 4)
    rules = [
        {"rule": "buildByIp", "buildId": "bother", "ipList": [f"198.51.100.{i}" for i in range(9)]},
        {"rule": "buildByPlatform", "buildId": "bmain", "platforms": ["mac"]},
        {"rule": "appByIp", "appId": "x", "ipList": ["203.0.113.1"]},
    ]  # fmt: skip
    releases = {"latestReleaseBuildId": "bmain", "releaseRedirections": rules}
    (bucket_dir / "desktop-releases.json").write_text(json.dumps(releases))
    write_builds(bucket_dir, 10)
    return bucket_dir


def prepare(data_dir: Path) -> Path:
    bucket_dir = prepare_small(data_dir)
    block = os.urandom(1024 * 1024)
    with open(bucket_dir / "App-42.0.0-build-bmain-x64.exe", "wb") as handle:
        for _ in range(GIB // len(block)):
            handle.write(block)
    return bucket_dir


def start_gunicorn(
    data_dir: Path, port: int, app: str = "selfhosted.wsgi", **extra_env: str
) -> subprocess.Popen:
    """gunicorn with `make run`'s own settings (selfhosted/gunicorn.conf.py: workers, worker
    class, reuse_port, keep-alive and the access log, written to a file here)."""
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'db.sqlite3'}",
        "STORAGE_BACKEND": "filesystem",
        "PRODUCTION_BUCKET": BUCKET,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CACHE_URL": "locmemcache://",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",
        "ADOPTION_COUNTING": "false",
        "PORT": str(port),
        "BIND_ADDRESS": "127.0.0.1",
        **extra_env,
    }
    env.pop("GUNICORN_CMD_ARGS", None)
    command = [sys.executable, "-m", "gunicorn", "-c", "selfhosted/gunicorn.conf.py", app]
    log = open(data_dir / "access.log", "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log)


def start_nginx(data_dir: Path, bucket_dir: Path, port: int) -> subprocess.Popen:
    conf = data_dir / "nginx.conf"
    conf.write_text(f"""
worker_processes 2;
daemon off;
pid {data_dir}/nginx.pid;
error_log {data_dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {data_dir}/nginx-tmp;
    proxy_temp_path {data_dir}/nginx-tmp;
    fastcgi_temp_path {data_dir}/nginx-tmp;
    uwsgi_temp_path {data_dir}/nginx-tmp;
    scgi_temp_path {data_dir}/nginx-tmp;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {bucket_dir};
    }}
}}
""")
    return subprocess.Popen(["nginx", "-c", str(conf), "-p", str(data_dir)])


def wrk(url: str, duration: int, headers: tuple[str, ...] = ()) -> dict:
    given = [part for header in headers for part in ("-H", header)]
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency", *given, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    timeouts = re.search(r"timeout (\d+)", out)

    def pct(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": rps,
        "p50": pct("50"),
        "p99": pct("99"),
        "errors": sum(int(m.group(1)) for m in (errors, timeouts) if m),  # non-2xx + timeouts
    }


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


def row(name: str, ours: dict, nginx: dict) -> None:
    ratio = ours["rps"] / nginx["rps"]
    mine = f"{ours['rps']:>7.0f} req/s p50 {ours['p50']:>5.2f} ms p99 {ours['p99']:>6.2f} ms"
    theirs = f"{nginx['rps']:>7.0f} req/s p50 {nginx['p50']:>5.2f} ms p99 {nginx['p99']:>5.2f} ms"
    print(f"{name:<34} {mine} errors {ours['errors']} | nginx {theirs} ({ratio:.2f}×)", flush=True)


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
            setup = "gunicorn -c selfhosted/gunicorn.conf.py (make run's settings, access log on)"
            print(f"{setup}, wrk -c{CONNECTIONS}, {args.duration}s per case, "
                  f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
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


STAGING_HEADER = "x-user-staging-id: 3b0c6b52-1d7e-4e8a-9c41-00004ccccccc"


def run_adoption(data_dir: Path, args) -> None:
    """The feed with adoption counting off and on, in turns (off, on, on, off) so that a drift
    of the machine's load hits both alike; a 25% rollout rule is evaluated on every poll."""
    releases = json.loads((data_dir / "buckets" / BUCKET / "desktop-releases.json").read_text())
    rule = {"rule": "buildByPercentage", "buildId": "bmain", "percentage": 25}
    releases["releaseRedirections"].append(rule)
    (data_dir / "buckets" / BUCKET / "desktop-releases.json").write_text(json.dumps(releases))
    env = {**os.environ, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING",
           "DATABASE_URL": f"sqlite:///{data_dir / 'db.sqlite3'}"}  # fmt: skip
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    best = {"off": [], "on": []}
    for order in (("off", "on"), ("on", "off")):
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
                wrk(url, 2, (STAGING_HEADER,))
                best[mode].append(wrk(url, args.duration, (STAGING_HEADER,)))
            finally:
                app.terminate()
                app.wait(timeout=30)
    off = max(best["off"], key=lambda r: r["rps"])
    on = max(best["on"], key=lambda r: r["rps"])
    for mode, result in (("off", off), ("on", on)):
        print(f"latest-mac.yml, 25% rollout, counting {mode:<3} {result['rps']:>7.0f} req/s "
              f"p50 {result['p50']:>5.2f} ms p99 {result['p99']:>6.2f} ms "
              f"errors {result['errors']}", flush=True)  # fmt: skip
    print(
        f"adoption counting on keeps {on['rps'] / off['rps']:.1%} of the throughput "
        "(best of two runs each)",
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
    """The download-link budget of docs/budgets.md in the same run (the cases live in
    bench/downloads.py)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.downloads import prepare_downloads, run_download_cases

    prepare_downloads(bucket_dir)
    run_download_cases(ours, nginx, duration)


if __name__ == "__main__":
    main()
