"""The feed and a download link on S3 at a realistic round trip, against the filesystem backend
in the same run.

Starts the S3-compatible test server (moto) behind a small TCP proxy that delays every chunk by
half of `--rtt-ms` in each direction (25 ms round trip by default: R2/S3 seen from a VM), writes
the same production layout to the bucket and to a directory, and runs gunicorn with `make run`'s
settings twice: `STORAGE_BACKEND=s3` (with `S3_REDIRECT=presigned`) and `filesystem`. With wrk
at 64 connections it measures `/update/latest-mac.yml` and `/download/mac` (Safari) on both,
then fetches a 20 MB installer through `/update/<name>` from the S3 one, following the redirect
through the delaying proxy, and checks its sha256.

    .venv/bin/python bench/s3_latency.py [--duration 10] [--rtt-ms 25]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    BUCKET,
    SAFARI_14,
    ensure_tools,
    free_port,
    prepare_downloads,
    prepare_small,
    start_gunicorn,
    wait_for,
    wrk,
)
from tests.fakes.s3_server import start_s3_server  # noqa: E402

BIG = "App Setup 42.0.0 - Build bmain-x64.exe"
BIG_SIZE = 20 * 1000 * 1000


class DelayingProxy:
    """TCP proxy: every chunk is delivered `delay` seconds after it arrived, in order."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.upstream_port, self.delay = upstream_port, delay
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", self.port, backlog=1024)
        )
        ready.set()
        self.loop.run_until_complete(server.serve_forever())

    async def _connection(self, client_reader, client_writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            self._pump(client_reader, up_writer), self._pump(up_reader, client_writer)
        )

    async def _pump(self, reader, writer) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                due, data = item
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.delay, data))
        except OSError:
            pass
        queue.put_nowait(None)
        try:
            await sender
        except OSError:
            pass


def prepare(data_dir: Path, s3_client) -> bytes:
    """The same production layout in a directory and in the bucket; returns the big file."""
    bucket_dir = prepare_small(data_dir)
    prepare_downloads(bucket_dir)
    big = os.urandom(BIG_SIZE)
    (bucket_dir / BIG).write_bytes(big)
    s3_client.create_bucket(Bucket=BUCKET)
    for path in sorted(bucket_dir.iterdir()):
        s3_client.put_object(Bucket=BUCKET, Key=path.name, Body=path.read_bytes())
    return big


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rtt-ms", type=float, default=25.0)
    args = parser.parse_args()
    ensure_tools()
    s3 = start_s3_server()
    proxy = DelayingProxy(int(s3.url.rsplit(":", 1)[1]), args.rtt_ms / 2000)
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        fs_dir, s3_dir = Path(tmp) / "fs", Path(tmp) / "s3"
        fs_dir.mkdir()
        s3_dir.mkdir()
        big = prepare(fs_dir, s3.client())
        fs_port, s3_port = free_port(), free_port()
        servers = [
            start_gunicorn(fs_dir, fs_port),
            start_gunicorn(
                s3_dir,
                s3_port,
                STORAGE_BACKEND="s3",
                AWS_S3_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}",
                AWS_S3_REGION_NAME="us-east-1",
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                S3_REDIRECT="presigned",
            ),
        ]
        try:
            run(args, fs_port, s3_port, servers, big)
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
            s3.stop()


def run(args, fs_port: int, s3_port: int, servers, big: bytes) -> None:
    fs_url, s3_url = f"http://127.0.0.1:{fs_port}", f"http://127.0.0.1:{s3_port}"
    wait_for(f"{fs_url}/update/latest-mac.yml", servers[0])
    wait_for(f"{s3_url}/update/latest-mac.yml", servers[1])
    print(f"gunicorn with make run's settings, S3 (moto) behind a {args.rtt_ms:.0f} ms round "
          f"trip vs filesystem, wrk -c64, {args.duration}s per case, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    cases = {
        "/update/latest-mac.yml": {},
        "/download/mac (Safari)": {"User-Agent": SAFARI_14},
    }
    for name, headers in cases.items():
        path = name.split(" ")[0]
        wrk(f"{s3_url}{path}", 2, headers)  # warm both
        wrk(f"{fs_url}{path}", 2, headers)
        on_s3 = wrk(f"{s3_url}{path}", args.duration, headers)
        on_fs = wrk(f"{fs_url}{path}", args.duration, headers)
        ratio = on_s3["rps"] / on_fs["rps"]
        print(f"{name:<26} s3 {on_s3['rps']:>6.0f} req/s p99 {on_s3['p99']:6.1f} ms "
              f"errors {on_s3['errors']} | filesystem {on_fs['rps']:>6.0f} req/s "
              f"p99 {on_fs['p99']:6.1f} ms ({ratio:.2f}×)", flush=True)  # fmt: skip
    started = time.monotonic()
    answer = requests.get(f"{s3_url}/update/{BIG}", timeout=120)
    seconds = time.monotonic() - started
    hops = " → ".join(str(r.status_code) for r in [*answer.history, answer])
    same = hashlib.sha256(answer.content).hexdigest() == hashlib.sha256(big).hexdigest()
    print(f"20 MB installer through /update/<name> on s3: {hops}, {len(answer.content):,} bytes "
          f"in {seconds:.2f} s, sha256 {'matches' if same else 'DIFFERS'}, "
          f"Content-Disposition {answer.headers.get('Content-Disposition')!r}")  # fmt: skip


if __name__ == "__main__":
    main()
