"""Answer time of the ToDesktop release webhook (docs/webhooks.md: "within a few milliseconds").

Runs the real view over HTTP under gunicorn (2 sync workers on loopback, as in production:
database connections are kept between requests) against a throwaway PostgreSQL database
(`test_<name of DATABASE_URL's database>`, created, migrated and dropped) with staging queued
on Redis after commit, and prints percentiles of the answer time of accepted (new body) and
duplicate deliveries, measured at the client, one request at a time on a new connection.

    .venv/bin/python bench/webhook_intake.py [--requests 300]

Defaults: DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/selfhosted_bench,
CELERY_BROKER_URL=redis://127.0.0.1:6379/15 (its `staging` queue is emptied at the end).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, free_port, wait_for  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "selfhosted.settings")
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres:postgres@127.0.0.1:5432/selfhosted_bench"
)
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("DATA_DIR", str(ROOT / "var" / "bench"))
os.environ["WEBHOOK_HMAC_KEY"] = "bench-hmac-key"
os.environ["TODESKTOP_APP_ID"] = "240808w4a9kky77"
os.environ["LOG_LEVEL"] = "WARNING"

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from django.db import connection  # noqa: E402

from selfhosted.celery import app as celery_app  # noqa: E402

FIXTURE = json.loads((ROOT / "tests" / "data" / "todesktop-release-webhook.json").read_text())


def serve(database: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{database}"
    env = {**os.environ, "DATABASE_URL": url}
    command = [sys.executable, "-m", "gunicorn", "selfhosted.wsgi:application", "--workers=2"]
    server = subprocess.Popen([*command, f"--bind=127.0.0.1:{port}"], cwd=ROOT, env=env)
    try:
        wait_for(f"http://127.0.0.1:{port}/update/my-ip", server)
    except SystemExit:
        server.kill()
        raise
    return server, port


def deliver(port: int, raw: bytes) -> tuple[int, float]:
    signature = hmac.new(b"bench-hmac-key", raw, hashlib.sha256).hexdigest()
    headers = {"X-ToDesktop-HMAC-SHA256": signature, "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    conn.request("POST", "/new-release-webhook", body=raw, headers=headers)
    response = conn.getresponse()
    response.read()
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    return response.status, elapsed


def bodies(count: int) -> list[bytes]:
    return [
        json.dumps({**FIXTURE, "buildId": f"bench{n:010d}", "appVersion": f"1.0.{n}"}).encode()
        for n in range(count)
    ]


def report(label: str, timings: list[float]) -> None:
    q = statistics.quantiles(timings, n=100)
    print(
        f"{label:<10} n={len(timings):<5} p50={statistics.median(timings):6.2f} ms  "
        f"p90={q[89]:6.2f} ms  p99={q[98]:6.2f} ms  max={max(timings):6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    celery_app.conf.task_always_eager = False
    broker = redis.Redis.from_url(celery_app.conf.broker_url)
    database = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    connection.close()
    server, port = serve(database)
    try:
        raws = bodies(args.requests)
        for raw in raws[:10]:  # warm-up: connections, imports, query plans
            deliver(port, raw)
        accepted, duplicates = [], []
        for raw in raws[10:]:
            status, elapsed = deliver(port, raw)
            assert status == 202, status
            accepted.append(elapsed)
        for raw in raws[10:]:
            status, elapsed = deliver(port, raw)
            assert status == 200, status
            duplicates.append(elapsed)
        print(f"queued staging tasks: {broker.llen('staging')}")
        report("accepted", accepted)
        report("duplicate", duplicates)
    finally:
        server.terminate()
        server.wait(30)
        broker.delete("staging")
        connection.close()
        connection.creation.destroy_test_db(
            connection.settings_dict["NAME"].removeprefix("test_"), verbosity=0
        )


if __name__ == "__main__":
    main()
