"""Staging throughput and the staging worker's peak memory (docs/budgets.md: 1 GiB staged, RSS < 200
MB).

Starts the S3-compatible test server (moto) and the fake ToDesktop origin serving a Linux build
whose AppImage is a generated 1 GiB file, then runs the staging service in a separate worker
process (Django + boto3, as a Celery worker would run it) against a throwaway SQLite database,
and prints MB/s and that process's peak RSS (its high-water mark, `ru_maxrss`).

    .venv/bin/python bench/staging.py [--size-mib 1024] [--concurrency 4] [--backend s3]

On this 2-core machine moto's server (pure Python, parts kept in memory) is the slowest link;
`--backend filesystem` shows the pipeline without it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT  # noqa: E402

STAGING_BUCKET = "bench-staging"


def _parent(args: argparse.Namespace) -> None:
    from tests.fakes.s3_server import start_s3_server
    from tests.fakes.todesktop_origin import FakeBuild, start_origin

    size = args.size_mib * 1024 * 1024
    big = FakeBuild().layout["linux"]["appImage"]["x64"]
    fake = FakeBuild(platforms=("linux",), sizes={big: size})
    print(f"generating and hashing a {args.size_mib} MiB artifact for the fake origin…")
    origin = start_origin(fake)
    s3 = start_s3_server()
    try:
        s3.client().create_bucket(Bucket=STAGING_BUCKET)
        with tempfile.TemporaryDirectory(prefix="bench-staging-") as tmp:
            env = _env(tmp, s3.url, origin.url, args.concurrency)
            env["STORAGE_BACKEND"] = args.backend
            manage = [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"]
            subprocess.run(manage, env=env, check=True, cwd=ROOT)
            child = [sys.executable, __file__, "--child", fake.build_id, fake.app_id]
            answer = subprocess.run(child, env=env, cwd=ROOT, capture_output=True, text=True)
            if answer.returncode != 0:
                sys.exit(f"the staging worker failed:\n{answer.stdout}\n{answer.stderr}")
            result = json.loads(answer.stdout.strip().splitlines()[-1])
    finally:
        s3.stop()
        origin.stop()
    total = sum(file.size for file in fake.files.values()) + sum(
        len(body) for body in fake.documents().values()
    )
    mb_per_s = total / result["seconds"] / 1e6
    print(f"staged {len(fake.files) + len(fake.documents())} files, {total / 2**20:.0f} MiB")
    print(f"  status:          {result['status']} ({result['verification']} for the artifact)")
    print(f"  time:            {result['seconds']:.1f} s")
    print(f"  throughput:      {mb_per_s:.0f} MB/s (origin → hashes → {args.backend} bucket)")
    print(
        f"  worker RSS peak: {result['peak_rss_mb']:.0f} MB "
        f"(after start-up {result['baseline_rss_mb']:.0f} MB; target < 200 MB)"
    )


def _env(tmp: str, s3_url: str, origin_url: str, concurrency: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "selfhosted.settings",
        "DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3",
        "DATA_DIR": tmp,
        "SECRET_KEY": "bench-only",
        "STORAGE_BACKEND": "s3",
        "AWS_S3_ENDPOINT_URL": s3_url,
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "STAGING_BUCKET": STAGING_BUCKET,
        "PRODUCTION_BUCKET": "bench-production",
        "TODESKTOP_DOWNLOAD_BASE_URL": origin_url,
        "STAGING_CONCURRENCY": str(concurrency),
        "REVIEW_BACKEND": "admin",
        "CELERY_BROKER_URL": f"sqla+sqlite:///{tmp}/broker.sqlite3",
        "LOG_LEVEL": "WARNING",
    }


def _child(build_id: str, app_id: str) -> None:
    import django

    django.setup()
    import boto3  # noqa: F401 - loaded as in a worker before it takes a task

    from releases.models import Build, ReleaseRequest
    from releases.services.staging import build_stage

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    build = Build.objects.create(build_id=build_id, app_id=app_id)
    release = ReleaseRequest.objects.create(build=build, payload={"buildId": build_id})
    started = time.perf_counter()
    build_stage(release_id=release.pk)
    seconds = time.perf_counter() - started
    build.refresh_from_db()
    artifact = build.files.filter(name__endswith=".AppImage").first()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "status": build.status,
                "verification": artifact.verification if artifact else "missing",
                "baseline_rss_mb": baseline,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--backend", choices=("s3", "filesystem"), default="s3")
    parser.add_argument("--child", nargs=2, metavar=("BUILD_ID", "APP_ID"))
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
    else:
        _parent(args)


if __name__ == "__main__":
    main()
