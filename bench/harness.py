"""What the bench scripts share (bench/README.md, docs/budgets.md): every script imports this
module and no script imports another.

- tools and processes: `ensure_tools`, `free_port`, `wait_for`, `start_gunicorn` (with
  `make run`'s settings, selfhosted/gunicorn.conf.py) and `start_nginx` over a directory;
- measurement: `wrk` (and `parse_wrk`, its output read into req/s, p50, p99 and errors), `row`
  (one case beside nginx, with the ratio) and `print_setup` (the line that heads a run);
- the production layout the scripts serve (`prepare_small`, `write_builds`,
  `prepare_downloads`) and the download-link cases that bench/downloads.py runs alone and
  bench/feed.py at the end of its own run (`run_download_cases`).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "desktop-app-distributables"
CONNECTIONS = 64

# Tools and processes


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


def answers(url: str) -> bool:
    """Does `url` answer with a status below 400 (as `curl -sf` without -L would succeed)?"""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request("GET", f"{parts.path or '/'}{'?' if parts.query else ''}{parts.query}")
        return connection.getresponse().status < 400
    except OSError:
        return False
    finally:
        connection.close()


def wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    """Until `url` answers; exits (SystemExit) when `process` ends first or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{shlex.join(map(str, process.args))} exited with {process.returncode}")
        if answers(url):
            return
        time.sleep(0.2)
    sys.exit(f"{url} did not answer within {seconds:.0f} s")


def start_gunicorn(
    data_dir: Path, port: int, app: str = "selfhosted.wsgi", **extra_env: str
) -> subprocess.Popen:
    """gunicorn with `make run`'s own settings (selfhosted/gunicorn.conf.py: workers, worker
    class, reuse_port, keep-alive and the access log, written to a file here), serving
    `data_dir`'s filesystem buckets with a SQLite database there; `extra_env` overrides."""
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


def start_nginx(data_dir: Path, root: Path, port: int) -> subprocess.Popen:
    """nginx serving the files of `root` on `port`; its configuration, logs and pid in
    `data_dir` (which nginx's workers, www-data, must be able to read, like `root`)."""
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
        root {root};
    }}
}}
""")
    return subprocess.Popen(["nginx", "-c", str(conf), "-p", str(data_dir)])


# Measurement


def wrk(url: str, duration: int, headers: Mapping[str, str] | None = None) -> dict:
    """wrk at CONNECTIONS keep-alive connections for `duration` seconds, with request headers."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict:
    """req/s, p50 and p99 in ms, and errors (non-2xx/3xx answers + timeouts) of `wrk --latency`."""
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


def row(name: str, ours: dict, nginx: dict) -> None:
    ratio = ours["rps"] / nginx["rps"]
    mine = f"{ours['rps']:>7.0f} req/s p50 {ours['p50']:>5.2f} ms p99 {ours['p99']:>6.2f} ms"
    theirs = f"{nginx['rps']:>7.0f} req/s p50 {nginx['p50']:>5.2f} ms p99 {nginx['p99']:>5.2f} ms"
    print(f"{name:<34} {mine} errors {ours['errors']} | nginx {theirs} ({ratio:.2f}×)", flush=True)


def print_setup(duration: int) -> None:
    """The line that heads a run of gunicorn beside nginx."""
    setup = "gunicorn -c selfhosted/gunicorn.conf.py (make run's settings, access log on)"
    print(f"{setup}, wrk -c{CONNECTIONS}, {duration}s per case, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip


# The production layout


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


SAFARI_14 = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Safari/605.1.15"
)
BUILD = "bmain"  # prepare_small's latest build: the feed and the links can share one bucket
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


# The download-link cases (docs/budgets.md), run by bench/downloads.py and bench/feed.py


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
