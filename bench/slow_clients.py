"""Slow clients against `make run`: N connections each reading a big installer at a fixed rate,
while probes measure the feed, a download link and the admin login page.

Starts `manage.py runall` exactly as `make run` does (embedded SQLite, broker and filesystem
buckets in a temporary DATA_DIR, the project's gunicorn settings), writes a 300 MB installer and
the manifests, then for `--seconds` keeps `--clients` connections reading
`/update/<installer>` at `--rate` bytes/s, and probes `/update/latest-mac.yml`, `/download/mac`
(Safari) and `/admin/login/` on fresh connections every 100 ms. Prints how many slow clients
kept receiving bytes and each probe's p50/p99/max and failures.

    .venv/bin/python bench/slow_clients.py [--clients 300] [--rate 65536] [--seconds 40]

tests/project/test_slow_clients.py runs the same with a smaller N.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    BUCKET,
    ROOT,
    SAFARI_14,
    free_port,
    prepare_downloads,
    prepare_small,
    wait_for,
)

INSTALLER = "App-42.0.0-build-bmain-x64.exe"
PROBES = {
    "/update/latest-mac.yml": {},
    "/download/mac (Safari)": {"User-Agent": SAFARI_14},
    "/admin/login/": {},
}
EMBEDDED = ("DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_BACKEND", "SECRET_KEY", "DATA_DIR")


def prepare(data_dir: Path, size: int) -> None:
    bucket_dir = prepare_small(data_dir)
    prepare_downloads(bucket_dir)
    with open(bucket_dir / INSTALLER, "wb") as handle:
        handle.truncate(size)  # sparse: the page cache serves it like a real file


def start_make_run(data_dir: Path, port: int, **extra_env: str) -> subprocess.Popen:
    """`manage.py runall` (what `make run` execs) with the embedded defaults."""
    env = {k: v for k, v in os.environ.items() if k not in EMBEDDED}
    env.update(
        DATA_DIR=str(data_dir),
        PORT=str(port),
        PRODUCTION_BUCKET=BUCKET,
        PYTHONUNBUFFERED="1",
        **extra_env,
    )
    log = open(data_dir / "runall.log", "wb")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        [sys.executable, "manage.py", "runall"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(port: int, process: subprocess.Popen, seconds: float = 120) -> None:
    wait_for(f"http://127.0.0.1:{port}/update/latest-mac.yml", process, seconds)


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class SlowClient:
    received: int = 0
    first_byte: float | None = None
    last_byte: float | None = None
    error: str = ""
    # Bytes received per second of the run (index = whole seconds since the start).
    per_second: dict[int, int] = field(default_factory=dict)


async def _slow_read(port: int, path: str, rate: int, seconds: float, client: SlowClient) -> None:
    started = time.monotonic()
    chunk = max(rate // 8, 1024)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=chunk * 2)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await writer.drain()
        while (now := time.monotonic()) - started < seconds:
            data = await asyncio.wait_for(reader.read(chunk), timeout=started + seconds - now)
            if not data:
                client.error = "closed by the server"
                break
            now = time.monotonic()
            client.received += len(data)
            client.first_byte = client.first_byte or now
            client.last_byte = now
            second = int(now - started)
            client.per_second[second] = client.per_second.get(second, 0) + len(data)
            # Pace: never ahead of `rate` bytes/s since the first byte.
            ahead = client.received / rate - (now - client.first_byte)
            if ahead > 0:
                await asyncio.sleep(ahead)
        writer.close()
    except TimeoutError:
        pass  # the run ended while waiting for bytes: judged by last_byte below
    except OSError as exc:
        client.error = f"{type(exc).__name__}: {exc}"


async def _slow_clients(port: int, path: str, count: int, rate: int, seconds: float):
    clients = [SlowClient() for _ in range(count)]
    await asyncio.gather(*(_slow_read(port, path, rate, seconds, c) for c in clients))
    return clients


def run_slow_clients(port: int, path: str, count: int, rate: int, seconds: float):
    return asyncio.run(_slow_clients(port, path, count, rate, seconds))


def kept_receiving(clients: list[SlowClient], seconds: float, started: float) -> int:
    """Clients that received bytes in the last 5 s of the run (or the last fifth, if shorter)."""
    window = min(5.0, seconds / 5)
    return sum(1 for c in clients if c.last_byte and c.last_byte >= started + seconds - window)


def probe(port: int, stop_at: float, interval: float = 0.1) -> dict[str, list[float | None]]:
    """Each probe on a fresh connection every `interval`; None = a failure (timeout, error,
    or a status other than 200)."""
    results: dict[str, list[float | None]] = {name: [] for name in PROBES}
    while time.monotonic() < stop_at:
        for name, headers in PROBES.items():
            path = name.split(" ")[0]
            started = time.monotonic()
            try:
                connection = HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                connection.close()
                ok = response.status == 200
            except OSError:
                ok = False
            results[name].append(time.monotonic() - started if ok else None)
        time.sleep(interval)
    return results


def summary(samples: list[float | None]) -> dict:
    times = sorted(s * 1000 for s in samples if s is not None)
    failures = sum(1 for s in samples if s is None)
    if not times:
        return {"count": len(samples), "failures": failures, "p50": None, "p99": None}
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return {
        "count": len(samples),
        "failures": failures,
        "p50": statistics.median(times),
        "p99": p99,
        "max": times[-1],
    }


def measure(port: int, count: int, rate: int, seconds: float) -> tuple[int, list, dict]:
    """Slow clients and probes at once; the probes start after the clients are connected."""
    probes: dict = {}
    started = time.monotonic()

    def probing() -> None:
        time.sleep(min(2.0, seconds / 4))  # let every slow client connect and start reading
        probes.update(probe(port, started + seconds))

    thread = threading.Thread(target=probing)
    thread.start()
    clients = run_slow_clients(port, f"/update/{INSTALLER}", count, rate, seconds)
    thread.join()
    return kept_receiving(clients, seconds, started), clients, probes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--rate", type=int, default=64 * 1024)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--size", type=int, default=300 * 1000 * 1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-slow-") as tmp:
        data_dir = Path(tmp)
        prepare(data_dir, args.size)
        port = free_port()
        process = start_make_run(data_dir, port)
        try:
            wait_ready(port, process)
            print(f"make run (manage.py runall), {args.clients} clients × "
                  f"{args.rate // 1024} KB/s of a {args.size // 1_000_000} MB installer for "
                  f"{args.seconds:.0f} s, {os.cpu_count()} CPUs, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
            kept, clients, probes = measure(port, args.clients, args.rate, args.seconds)
        finally:
            stop(process)
    received = sum(c.received for c in clients) / 1e6
    errors = sorted({c.error for c in clients if c.error})
    print(f"slow clients still receiving at the end: {kept}/{len(clients)} "
          f"({kept / len(clients):.0%}); {received:.0f} MB received in all"
          + (f"; errors: {errors[:3]}" if errors else ""))  # fmt: skip
    for name, samples in probes.items():
        s = summary(samples)
        if s["p99"] is None:
            print(f"{name:<26} {s['count']} probes, all failed")
            continue
        print(f"{name:<26} {s['count']:>4} probes  p50 {s['p50']:6.1f} ms  p99 {s['p99']:6.1f} ms"
              f"  max {s['max']:6.1f} ms  failures {s['failures']}")  # fmt: skip


if __name__ == "__main__":
    main()
