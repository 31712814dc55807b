"""Staged rollouts on the server (README: Staged rollouts): the `buildByPercentage` rule.

The cohort is electron-updater's own function of `x-user-staging-id`; the schedule is read
with an explicit clock (`now`), never by sleeping.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import pytest

from cdn.metadata import metadata_build
from cdn.resolve import resolve_key
from cdn.rollout import cohort_position
from releases.integrations import buckets
from releases.services.promotion.rules import rules_problems
from tests.cdn_support import build, publish

BUILDS = [build("b100", "1.0.0"), build("b200", "2.0.0")]
OLD, NEW = "latest-mac-build-b100.yml", "latest-mac-build-b200.yml"


def meta(*rules: dict):
    releases = {"latestReleaseBuildId": "b100", "releaseRedirections": list(rules)}
    return metadata_build(builds=BUILDS, releases=releases)


def rollout(percentage, **extra) -> dict:
    return {"rule": "buildByPercentage", "buildId": "b200", "percentage": percentage, **extra}


def serve(metadata, staging_id, path="latest-mac.yml", now=None) -> str:
    return resolve_key(
        path=path, metadata=metadata, client_ip="203.0.113.9", staging_id=staging_id, now=now
    )


def ids(count: int, seed: int = 12) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def electron_updater_in_cohort(staging_id: str, percentage: int) -> bool:
    """AppUpdater.isStagingMatch, spelled out: UUID.parse(id).readUInt32BE(12) / 0xffffffff <
    parseInt(stagingPercentage) / 100."""
    value = int.from_bytes(uuid.UUID(staging_id).bytes[12:16], "big")
    return value / 0xFFFFFFFF < percentage / 100


def test_about_thirty_percent_of_2000_random_installs_get_the_new_build_at_30_percent():
    metadata = meta(rollout(30))
    served = [serve(metadata, staging_id) for staging_id in ids(2000)]
    share = served.count(NEW) / len(served)
    assert 0.27 <= share <= 0.33, share
    assert set(served) == {OLD, NEW}


def test_each_install_gets_the_same_answer_every_time():
    metadata = meta(rollout(30))
    for staging_id in ids(200):
        answers = {serve(metadata, staging_id) for _ in range(5)}
        assert len(answers) == 1
        assert serve(metadata, staging_id.upper()) in answers  # hex digits in either case


def test_raising_the_percentage_keeps_everyone_who_was_already_in():
    at_30, at_60 = meta(rollout(30)), meta(rollout(60))
    population = ids(2000)
    in_30 = {i for i in population if serve(at_30, i) == NEW}
    in_60 = {i for i in population if serve(at_60, i) == NEW}
    assert in_30 < in_60
    assert 0.57 <= len(in_60) / len(population) <= 0.63


@pytest.mark.parametrize("percentage", [0, 1, 10, 25, 30, 50, 60, 99, 100])
def test_the_server_answers_exactly_as_electron_updater_would_for_every_id(percentage):
    metadata = meta(rollout(percentage))
    edges = [
        "00000000-0000-4000-8000-000000000000",
        "ffffffff-ffff-4fff-bfff-ffffffffffff",
        "8f1a2b3c-4d5e-4f60-8a7b-00007fffffff",  # exactly half-way
        "8f1a2b3c-4d5e-4f60-8a7b-00004ccccccc",  # just under 30% (0x4ccccccd / 0xffffffff)
        "8f1a2b3c-4d5e-4f60-8a7b-00004ccccccd",
    ]
    for staging_id in ids(2000) + edges:
        expected = NEW if electron_updater_in_cohort(staging_id, percentage) else OLD
        assert serve(metadata, staging_id) == expected, staging_id


@pytest.mark.parametrize(
    "header",
    [None, "", "not-a-uuid", "8f1a2b3c4d5e4f608a7b00007fffffff", "{8f1a2b3c-4d5e-4f60-8a7b-0}"],
)
def test_without_a_well_formed_header_the_previous_build_is_served(header):
    assert serve(meta(rollout(100)), header) == OLD
    assert cohort_position(header) is None


def test_platforms_limit_the_rollout_and_their_absence_means_every_platform():
    inside = "00000000-0000-4000-8000-000000000001"
    mac_only = meta(rollout(50, platforms=["mac"]))
    assert serve(mac_only, inside, "latest-mac.yml") == NEW
    assert serve(mac_only, inside, "latest.yml") == "latest-build-b100.yml"
    everywhere = meta(rollout(50))
    assert serve(everywhere, inside, "latest.yml") == "latest-build-b200.yml"
    assert (
        serve(everywhere, inside, "latest-linux-arm64.yml") == "latest-linux-arm64-build-b200.yml"
    )


def test_rules_are_walked_in_order_and_later_matches_override():
    inside = "00000000-0000-4000-8000-000000000001"
    ip_rule = {"rule": "buildByIp", "buildId": "b300", "ipList": ["203.0.113.9"]}
    assert serve(meta(ip_rule, rollout(50)), inside) == NEW
    assert serve(meta(rollout(50), ip_rule), inside) == "latest-mac-build-b300.yml"


def test_versioned_and_pinned_manifests_ignore_the_rule():
    inside = "00000000-0000-4000-8000-000000000001"
    metadata = meta(rollout(100))
    assert serve(metadata, inside, "latest-mac-1.0.0.yml") == OLD
    assert serve(metadata, inside, "latest-mac-build-b100.yml") == OLD


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_the_schedule_steps_in_at_its_times():
    steps = [
        {"at": "2026-03-02T09:00:00Z", "percentage": 10},
        {"at": "2026-03-03T09:00:00+00:00", "percentage": 50},
        {"at": "2026-03-04T11:00:00+02:00", "percentage": 100},  # 09:00 UTC
    ]
    metadata = meta(rollout(0, schedule=steps))
    population = ids(1000)

    def share(now: float) -> float:
        return sum(serve(metadata, i, now=now) == NEW for i in population) / len(population)

    assert share(at("2026-03-02T08:59:59Z")) == 0
    assert 0.07 <= share(at("2026-03-02T09:00:00Z")) <= 0.13
    assert 0.07 <= share(at("2026-03-03T08:59:59Z")) <= 0.13
    assert 0.45 <= share(at("2026-03-03T09:00:00Z")) <= 0.55
    assert share(at("2026-03-04T08:59:59Z")) < 1
    assert share(at("2026-03-04T09:00:00Z")) == 1
    assert share(datetime(2030, 1, 1, tzinfo=UTC).timestamp()) == 1


# --- Desired-state validation ------------------------------------------------------------------


def problems(rule: dict) -> list[str]:
    raw = json.dumps({"latestReleaseBuildId": "b100", "releaseRedirections": [rule]}).encode()
    return rules_problems(raw, listed={"b100", "b200"})


def test_a_valid_rollout_passes_validation():
    steps = [{"at": "2026-03-02T09:00:00Z", "percentage": 10.5}]
    assert problems(rollout(25, platforms=["mac", "windows"], schedule=steps)) == []


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        (rollout(-1), "percentage must be a number from 0 to 100"),
        (rollout(100.5), "percentage must be a number from 0 to 100"),
        (rollout("25"), "percentage input should be a valid number"),
        (rollout(True), "percentage input should be a valid number"),
        ({"rule": "buildByPercentage", "buildId": "b200"}, "percentage is required"),
        (rollout(5, platforms=[]), "platforms must name at least one platform"),
        (rollout(5, platforms=["beos"]), "platforms[0] must be one of windows, mac or linux"),
        (rollout(5, schedule={"at": "2026-03-02T09:00:00Z"}), "schedule must be a list"),
        (rollout(5, schedule=[{"at": "soon", "percentage": 9}]), "at must be an ISO-8601"),
        (
            rollout(5, schedule=[{"at": "2026-03-02T09:00:00", "percentage": 9}]),
            "schedule[0].at must give its time zone",
        ),
        (
            rollout(5, schedule=[{"at": "2026-03-02T09:00:00Z", "percentage": 900}]),
            "schedule[0].percentage must be a number from 0 to 100",
        ),
        (
            rollout(
                5,
                schedule=[
                    {"at": "2026-03-03T09:00:00Z", "percentage": 50},
                    {"at": "2026-03-02T09:00:00Z", "percentage": 100},
                ],
            ),
            "schedule steps must be in strictly increasing time",
        ),
        ({**rollout(5), "buildId": "b999"}, "names build b999, which is not listed"),
    ],
)
def test_a_bad_percentage_or_schedule_is_refused_with_a_clear_reason(rule, why):
    found = problems(rule)
    assert found and why in found[0], found


def test_a_rule_the_feed_cannot_read_matches_nobody(fs_buckets):
    inside = "00000000-0000-4000-8000-000000000001"
    for broken in (rollout(150), rollout("50"), rollout(50, schedule=[{"at": "x"}])):
        assert serve(meta(broken), inside) == OLD


# --- Through the feed view ---------------------------------------------------------------------


@pytest.fixture
def prod(fs_buckets):
    bucket = buckets.production(role="promoter")
    publish(
        bucket,
        files={OLD: b"version: 1.0.0\n", NEW: b"version: 2.0.0\n"},
        builds=BUILDS,
        releases={"latestReleaseBuildId": "b100", "releaseRedirections": [rollout(30)]},
    )
    return bucket


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_feed_reads_the_staging_id_header(client, prod):
    inside, outside = "00000000-0000-4000-8000-000000000001", "ffffffff-ffff-4fff-bfff-ffffffffffff"
    poll = "/update/latest-mac.yml"
    assert body(client.get(poll, headers={"x-user-staging-id": inside})) == b"version: 2.0.0\n"
    assert body(client.get(poll, headers={"x-user-staging-id": outside})) == b"version: 1.0.0\n"
    assert body(client.get(poll)) == b"version: 1.0.0\n"
