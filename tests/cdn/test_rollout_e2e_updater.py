"""Staged rollouts with the real client: electron-updater 6 and builder-util-runtime from Node
against the feed under gunicorn (see tests/cdn/test_cdn_e2e_updater.py for the harness)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cdn.test_cdn_e2e_updater import E2E_DIR, latest_yml, node  # noqa: F401 (a fixture)
from tests.cdn.test_rollout_cohort import ids
from tests.cdn_support import build, start_live_server

INSIDE = "3b0c6b52-1d7e-4e8a-9c41-000000000001"  # position ~0: in every cohort above 0%
OUTSIDE = "3b0c6b52-1d7e-4e8a-9c41-fffffff00000"  # position ~1: in none below 100%


@pytest.fixture(scope="module")
def feed(tmp_path_factory):
    files = {}
    for build_id, version in (("r100", "1.0.0"), ("r200", "2.0.0")):
        name = f"TestApp Setup {version}.exe"
        files[name] = version.encode() * 1000
        files[f"latest-build-{build_id}.yml"] = latest_yml(version, name, files[name])
    rule = {"rule": "buildByPercentage", "buildId": "r200", "percentage": 30}
    server = start_live_server(tmp_path_factory.mktemp("rollout-e2e"))
    server.publish(
        files=files,
        builds=[build("r100", "1.0.0"), build("r200", "2.0.0")],
        releases={"latestReleaseBuildId": "r100", "releaseRedirections": [rule]},
    )
    yield server
    server.stop()


def check(node, feed, work: Path, staging_id: str) -> dict:  # noqa: F811
    (work / "userData").mkdir(parents=True)
    (work / "userData" / ".updaterId").write_text(staging_id)
    (work / "app-update.yml").write_text(f"provider: generic\nurl: {feed.url}/update/\n")
    config = {"workDir": str(work), "appVersion": "1.0.0", "action": "check"}
    answer = subprocess.run(
        [node, str(E2E_DIR / "run.js"), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(E2E_DIR / "node_modules")},
    )
    return json.loads(answer.stdout or json.dumps({"error": answer.stderr}))


def test_a_client_in_the_cohort_updates_and_one_outside_does_not(node, feed, tmp_path):  # noqa: F811
    inside = check(node, feed, tmp_path / "inside", INSIDE)
    assert inside.get("error") is None, inside
    assert inside["isUpdateAvailable"] is True and inside["version"] == "2.0.0"
    outside = check(node, feed, tmp_path / "outside", OUTSIDE)
    assert outside["isUpdateAvailable"] is False and outside["version"] == "1.0.0"


def test_builder_util_runtime_reads_every_id_as_the_server_does(node):  # noqa: F811
    """The cohort function against electron-updater's own UUID parser, for 2,000 ids."""
    from cdn.rollout import cohort_position

    population = ids(2000, seed=7) + [INSIDE, OUTSIDE]
    script = (
        "const {UUID} = require('builder-util-runtime');"
        "const ids = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(ids.map(id => "
        "[30, 60].map(p => UUID.parse(id).readUInt32BE(12) / 0xffffffff < p / 100))))"
    )
    answer = subprocess.run(
        [node, "-e", script],
        input=json.dumps(population),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NODE_PATH": str(E2E_DIR / "node_modules")},
    )
    theirs = json.loads(answer.stdout)
    ours = [[cohort_position(i) < p / 100 for p in (30, 60)] for i in population]
    assert ours == theirs
