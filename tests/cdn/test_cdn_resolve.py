"""Path resolution (docs/feed.md): every rule alone and combined, versioned and pinned manifests."""

from __future__ import annotations

import pytest

from cdn.metadata import metadata_build
from cdn.resolve import platform_of, resolve_key

BUILDS = [
    {"id": "b100", "version": "1.0.0", "createdAt": "2025-01-01T00:00:00Z", "isReleased": True},
    {"id": "b110", "version": "1.1.0", "createdAt": "2025-02-01T00:00:00Z", "isReleased": True},
    {"id": "b120x", "version": "1.2.0", "createdAt": "2025-03-01T00:00:00Z", "isReleased": False},
    {"id": "b120", "version": "1.2.0", "createdAt": "2025-03-02T00:00:00Z", "isReleased": True},
    {"id": "b130", "version": "1.3.0", "createdAt": "2025-04-01T00:00:00Z", "isReleased": False},
]


def meta(rules=None, latest="b110", builds=BUILDS):
    releases = {"latestReleaseBuildId": latest} if latest else {}
    if rules is not None:
        releases["releaseRedirections"] = rules
    return metadata_build(builds=builds, releases=releases)


def resolve(path, metadata=None, ip="203.0.113.9"):
    return resolve_key(path=path, metadata=metadata or meta(), client_ip=ip)


@pytest.mark.parametrize(
    "path",
    [
        "latest-build-zz9.yml",
        "latest-mac-build-zz9.yml",
        "latest-linux-build-zz9.yml",
        "td-latest-build-zz9.json",
        "td-latest-mac-build-zz9.json",
        "td-latest-linux-build-zz9.json",
        "app/latest-mac-build-zz9.yml",
    ],
)
def test_a_manifest_carrying_a_build_id_is_served_as_is(path):
    assert resolve(path) == path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("latest-1.1.0.yml", "latest-build-b110.yml"),
        ("latest-mac-1.1.0.yml", "latest-mac-build-b110.yml"),
        ("latest-linux-1.1.0.yml", "latest-linux-build-b110.yml"),
        ("td-latest-1.0.0.json", "td-latest-build-b100.json"),
        ("td-latest-mac-1.0.0.json", "td-latest-mac-build-b100.json"),
        ("td-latest-linux-1.0.0.json", "td-latest-linux-build-b100.json"),
        ("deep/er/latest-mac-1.0.0.yml", "deep/er/latest-mac-build-b100.yml"),
    ],
)
def test_a_versioned_manifest_resolves_through_the_released_build(path, expected):
    assert resolve(path) == expected


def test_a_versioned_lookup_ignores_unreleased_builds():
    # 1.2.0 has an unreleased entry first; the released one is chosen.
    assert resolve("latest-mac-1.2.0.yml") == "latest-mac-build-b120.yml"
    # 1.3.0 is only unreleased: the path is served as is.
    assert resolve("latest-mac-1.3.0.yml") == "latest-mac-1.3.0.yml"


def test_an_unknown_version_is_served_as_is_and_ignores_the_rules():
    assert resolve("td-latest-9.9.9.json") == "td-latest-9.9.9.json"


def test_the_implicit_latest_build_rule_applies_to_every_channel_manifest():
    assert resolve("latest.yml") == "latest-build-b110.yml"
    assert resolve("latest-mac.yml") == "latest-mac-build-b110.yml"
    assert resolve("latest-linux.yml") == "latest-linux-build-b110.yml"
    assert resolve("latest-linux-arm64.yml") == "latest-linux-arm64-build-b110.yml"
    assert resolve("td-latest.json") == "td-latest-build-b110.json"
    assert resolve("td-latest-mac.json") == "td-latest-mac-build-b110.json"


def test_without_rules_or_latest_build_the_path_is_served_as_is():
    assert resolve("latest-mac.yml", meta(latest=None)) == "latest-mac.yml"
    assert resolve("latest.yml", metadata_build(builds=None, releases=None)) == "latest.yml"


def test_non_manifest_paths_are_never_redirected():
    path = "My App 1.0.0 - Build b100-x64.dmg"
    assert resolve(path) == path
    assert resolve("latest-mac.yml.blockmap") == "latest-mac.yml.blockmap"


def test_the_control_files_are_rewritten_like_manifests():
    assert resolve("desktop-builds.json") == "desktop-builds-build-b110.json"
    assert resolve("desktop-releases.json") == "desktop-releases-build-b110.json"


def test_a_build_rule_sets_the_target_only_when_none_is_set():
    rules = [{"rule": "build", "buildId": "b100"}]
    assert resolve("latest-mac.yml", meta(rules)) == "latest-mac-build-b100.yml"
    rules = [{"rule": "build", "buildId": "b100"}, {"rule": "build", "buildId": "b120"}]
    assert resolve("latest-mac.yml", meta(rules)) == "latest-mac-build-b100.yml"


def test_a_build_by_ip_rule_applies_only_to_listed_addresses():
    rules = [{"rule": "buildByIp", "buildId": "b130", "ipList": ["198.51.100.7", "2001:DB8::7"]}]
    assert resolve("latest.yml", meta(rules), ip="198.51.100.7") == "latest-build-b130.yml"
    assert resolve("latest.yml", meta(rules), ip="198.51.100.8") == "latest-build-b110.yml"


def test_ip_rules_compare_addresses_not_strings():
    rules = [{"rule": "buildByIp", "buildId": "b130", "ipList": ["2001:DB8::7"]}]
    assert resolve("latest.yml", meta(rules), ip="2001:db8:0:0:0:0:0:7") == "latest-build-b130.yml"
    assert resolve("latest.yml", meta(rules), ip="::ffff:198.51.100.1") == "latest-build-b110.yml"


def test_ip_rules_do_not_apply_without_a_client_ip():
    rules = [{"rule": "buildByIp", "buildId": "b130", "ipList": ["198.51.100.7"]}]
    assert resolve("latest.yml", meta(rules), ip=None) == "latest-build-b110.yml"


@pytest.mark.parametrize(
    ("path", "platform"),
    [
        ("latest.yml", "windows"),
        ("td-latest.json", "windows"),
        ("latest-mac.yml", "mac"),
        ("td-latest-mac.json", "mac"),
        ("latest-linux.yml", "linux"),
        ("td-latest-linux.json", "linux"),
        ("latest-linux-arm64.yml", "linux"),
        ("app/latest-linux-arm64.yml", "linux"),
        ("latest-mac.dmg", None),
        ("other.yml", None),
        ("latest-beta.yml", None),
    ],
)
def test_the_platform_of_a_channel_file(path, platform):
    assert platform_of(path) == platform


@pytest.mark.parametrize(
    ("path", "redirected"),
    [
        ("latest.yml", False),
        ("td-latest.json", False),
        ("latest-mac.yml", True),
        ("td-latest-mac.json", True),
        ("latest-linux.yml", True),
        ("latest-linux-arm64.yml", True),
    ],
)
def test_a_build_by_platform_rule_applies_to_listed_platforms(path, redirected):
    rules = [{"rule": "buildByPlatform", "buildId": "b130", "platforms": ["mac", "linux"]}]
    expected_id = "b130" if redirected else "b110"
    assert f"-build-{expected_id}." in resolve(path, meta(rules))


def test_later_matches_override_earlier_ones_but_build_never_overrides():
    rules = [
        {"rule": "buildByPlatform", "buildId": "bplat", "platforms": ["mac"]},
        {"rule": "buildByIp", "buildId": "bip", "ipList": ["198.51.100.7"]},
        {"rule": "build", "buildId": "bbuild"},
    ]
    m = meta(rules)
    assert resolve("latest-mac.yml", m, ip="198.51.100.7") == "latest-mac-build-bip.yml"
    assert resolve("latest-mac.yml", m, ip="198.51.100.8") == "latest-mac-build-bplat.yml"
    assert resolve("latest.yml", m, ip="198.51.100.8") == "latest-build-bbuild.yml"
    reordered = meta([rules[1], rules[0]])
    assert resolve("latest-mac.yml", reordered, ip="198.51.100.7") == "latest-mac-build-bplat.yml"


def test_the_latest_release_build_comes_after_every_listed_rule():
    rules = [{"rule": "buildByIp", "buildId": "bip", "ipList": ["198.51.100.7"]}]
    assert resolve("latest.yml", meta(rules, latest="b100"), ip="198.51.100.7").endswith("bip.yml")
    assert resolve("latest.yml", meta(rules, latest="b100"), ip="10.0.0.1").endswith("b100.yml")


def test_app_by_ip_and_malformed_rules_are_ignored():
    rules = [
        {"rule": "appByIp", "buildId": "bapp", "ipList": ["198.51.100.7"]},
        {"rule": "buildByIp", "buildId": "", "ipList": ["198.51.100.7"]},
        {"rule": "buildByIp", "buildId": "bx", "ipList": "198.51.100.7"},
        {"rule": "buildByPlatform", "buildId": "by", "platforms": None},
        "not an object",
        {"rule": "buildByIp", "buildId": "bz", "ipList": ["not-an-ip", 7]},
    ]
    assert resolve("latest.yml", meta(rules), ip="198.51.100.7") == "latest-build-b110.yml"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("latest-build-abc123-mac.yml", "latest-mac-build-abc123.yml"),
        ("latest-build-abc123-linux.yml", "latest-linux-build-abc123.yml"),
        ("app1/latest-build-abc123-mac.yml", "app1/latest-mac-build-abc123.yml"),
        ("a/b/latest-build-abc123-mac.yml", "a/b/latest-mac-build-abc123.yml"),
        ("latest-build-abc123.yml", "latest-build-abc123.yml"),
    ],
)
def test_a_build_first_channel_name_is_read_platform_first(path, expected):
    assert resolve(path) == expected
