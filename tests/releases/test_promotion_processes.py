"""Promotion as real processes on the S3 server: server-side copies only, a kill in the middle,
and two promotions at once (docs/promotion.md, docs/budgets.md "bytes moved through the worker on S3
≈ 0")."""

from __future__ import annotations

import re
import time

import pytest

from releases.integrations import buckets
from releases.models import AuditEvent
from releases.services.promotion import promotion_run
from tests.promotion_support import (
    approve,
    production_contents,
    stage_build,
    start_manage,
    subprocess_env,
)

pytestmark = [pytest.mark.s3, pytest.mark.slow]  # starts and kills promotion processes


@pytest.mark.django_db
def test_on_s3_the_worker_moves_no_file_bytes_through_itself(s3_proxy):
    build, files = stage_build("bytes1", binaries=3, size=2 * 1024 * 1024)
    approve(build, release_info={"latestReleaseBuildId": "bytes1"})
    proxy = s3_proxy  # the promoter talks to S3 through the recorder
    proxy.clear()
    promotion_run(reason="approved")

    staged = sum(len(data) for data in files.values())
    copies = [e for e in proxy.record if e.copy_source]
    assert sorted(e.bucket_and_key[1] for e in copies) == sorted(files)
    assert all(e.sent == 0 for e in copies)
    file_transfers = [
        e
        for e in proxy.record
        if not e.copy_source and e.bucket_and_key[1] in files and (e.sent or e.received)
    ]
    assert file_transfers == []
    moved = sum(e.sent + e.received for e in proxy.record)
    assert moved < staged / 100, f"{moved} bytes through the worker for {staged} staged bytes"
    puts = {e.bucket_and_key[1] for e in proxy.record if e.method == "PUT" and e.sent}
    assert puts == {"desktop-builds.json", "desktop-releases.json"}
    contents = production_contents()
    assert {name: contents.get(name) for name in files} == files


def _wait_for_objects(process, production, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sum(1 for _ in production.list()) < at_least:
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "the promotion did not start copying"
        time.sleep(0.01)


def _wipe(production) -> None:
    for info in list(production.list()):
        production.delete(info.key)


@pytest.mark.django_db(transaction=True)
def test_a_promotion_killed_midway_then_rerun_ends_like_an_uninterrupted_one(s3_buckets):
    build, files = stage_build("kill1", binaries=60, size=2000)
    approve(build, release_info={"latestReleaseBuildId": "kill1"})
    production = buckets.production(role="promoter")
    worker = start_manage("reconcile", env=subprocess_env())

    _wait_for_objects(worker, production, at_least=10)
    worker.kill()  # SIGKILL: no cleanup, the lock's connection just drops
    worker.wait(timeout=30)
    worker.stdout.close()
    time.sleep(0.2)  # let the S3 server finish a copy that was in flight

    halfway = production_contents()
    assert 10 <= len(halfway) < len(files), "the kill must land in the middle of the copies"
    assert "desktop-builds.json" not in halfway  # no control file before every copy is done
    resumed = promotion_run(reason="resume")
    assert 0 < len(resumed.copied) <= len(files) - len(halfway) + 1
    after_resume = production_contents()

    _wipe(production)
    uninterrupted = promotion_run(reason="from scratch")
    assert len(uninterrupted.copied) == len(files)
    assert production_contents() == after_resume
    assert {k: after_resume[k] for k in files} == files


LOCK_LINE = re.compile(r"promotion lock (acquired|released|busy) at ([\d.]+)")


def _lock_times(output: str) -> dict[str, float]:
    times: dict[str, float] = {}
    for what, at in LOCK_LINE.findall(output):
        times.setdefault(what, float(at))
    return times


@pytest.mark.django_db(transaction=True)
def test_two_promotions_started_together_run_one_after_the_other(s3_buckets):
    build, files = stage_build("both1", binaries=80, size=1000)
    approve(build, release_info={"latestReleaseBuildId": "both1"})
    env = subprocess_env()

    workers = [start_manage("reconcile", env=env) for _ in range(2)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]

    assert [w.returncode for w in workers] == [0, 0], outputs
    first, second = sorted((_lock_times(o) for o in outputs), key=lambda t: t["acquired"])
    assert first["released"] <= second["acquired"]
    assert "busy" in second and second["busy"] < first["released"], "they did not overlap"
    assert sum("in sync" in o for o in outputs) == 1  # the second found nothing left to do
    assert AuditEvent.objects.filter(kind="reconcile.repaired").count() == 1
    assert {k: v for k, v in production_contents().items() if k in files} == files
