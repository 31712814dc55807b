"""In-process profile of the feed's and the download links' hot requests (no server, no network).

Calls the project's WSGI application the way a WSGI server does, for `latest-mac.yml` (rules),
a versioned manifest with 100,000 builds and `/download/mac` (Safari), and prints the CPU cost
per request and the top lines of cProfile (by own time), plus the garbage collector's pauses
while the 100,000 builds are loaded.

    .venv/bin/python bench/profile_feed.py [--requests 20000] [--top 12]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BUCKET, prepare_downloads, prepare_small, write_builds  # noqa: E402

SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Safari/605.1.15"
)


def setup(data_dir: Path) -> None:
    os.environ.update(
        DATA_DIR=str(data_dir),
        PRODUCTION_BUCKET=BUCKET,  # before Django loads: the buckets come from STORAGES
        DATABASE_URL=f"sqlite:///{data_dir / 'db.sqlite3'}",
        STORAGE_BACKEND="filesystem",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CACHE_URL="locmemcache://",
        LOG_LEVEL="WARNING",
        ADOPTION_COUNTING="false",
        DEBUG="false",
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "selfhosted.settings")


def environ_for(path: str, **headers: str) -> dict:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "RAW_URI": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
    }
    environ.update(headers)
    return environ


def call(app, path: str, **headers: str) -> None:
    status: list[str] = []
    body = app(environ_for(path, **headers), lambda s, h, e=None: status.append(s))
    try:
        for _ in body:
            pass
    finally:
        getattr(body, "close", lambda: None)()
    if not status[0].startswith("200"):
        sys.exit(f"{path}: {status[0]}")


def profile(app, label: str, path: str, count: int, top: int, **headers: str) -> None:
    for _ in range(200):
        call(app, path, **headers)
    started = time.process_time()
    for _ in range(count):
        call(app, path, **headers)
    per_request = (time.process_time() - started) / count * 1e6
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count // 4):
        call(app, path, **headers)
    profiler.disable()
    print(f"\n{label}: {per_request:.0f} µs of CPU per request (without the profiler)")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("\n".join(lines[start : start + top + 1]))


def gc_pauses() -> None:
    pauses: list[float] = []
    started: list[float] = []

    def callback(phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            pauses.append((time.perf_counter() - started.pop()) * 1000)

    gc.callbacks.append(callback)
    gc.collect()
    gc.callbacks.remove(callback)
    tracked, frozen = len(gc.get_objects()), gc.get_freeze_count()
    print(f"\nfull collection with 100,000 builds loaded: {max(pauses):.1f} ms "
          f"({tracked:,} tracked objects, {frozen:,} frozen)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        data_dir = Path(tmp)
        setup(data_dir)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        bucket_dir = data_dir / "buckets" / BUCKET
        prepare_small(data_dir)
        prepare_downloads(bucket_dir)
        from django.conf import settings

        from adoption.counting import flush_now, pending_polls
        from selfhosted.wsgi import application as app

        profile(app, "latest-mac.yml (rules)", "/update/latest-mac.yml", args.requests, args.top)
        # The same polls with an install id, adoption counting off and then on (README: Adoption).
        install = {"HTTP_X_USER_STAGING_ID": "3b0c6b52-1d7e-4e8a-9c41-00004ccccccc"}
        settings.ADOPTION_COUNTING = False
        profile(app, "latest-mac.yml with an install id, counting off", "/update/latest-mac.yml",
                args.requests, args.top, **install)  # fmt: skip
        settings.ADOPTION_COUNTING = True
        flush_now()  # the counting module's first use: its lazy state, before the measurement
        profile(app, "latest-mac.yml with an install id, counting on", "/update/latest-mac.yml",
                args.requests, args.top, **install)  # fmt: skip
        settings.ADOPTION_COUNTING = False
        queued = pending_polls()
        started = time.process_time()
        flush_now()  # what the flusher does every ADOPTION_FLUSH_SECONDS
        spent = (time.process_time() - started) / max(queued, 1) * 1e6
        print(f"\nthe flusher then folds and writes them: {spent:.1f} µs of CPU per poll "
              f"({queued:,} polls)")  # fmt: skip
        profile(app, "/download/mac (Safari)", "/download/mac", args.requests, args.top,
                HTTP_USER_AGENT=SAFARI)  # fmt: skip
        write_builds(bucket_dir, 100_000)
        from cdn.metadata import metadata_invalidate

        metadata_invalidate()
        profile(app, "latest-mac-42.0.0.yml, 100,000 builds", "/update/latest-mac-42.0.0.yml",
                args.requests, args.top)  # fmt: skip
        gc_pauses()


if __name__ == "__main__":
    main()
