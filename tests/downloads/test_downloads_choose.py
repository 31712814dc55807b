# ruff: noqa: E501  (real User-Agent strings and table rows read best on one line)
"""The pure choice logic of download links (docs/download-links.md): User-Agents, arches,
artifacts."""

from __future__ import annotations

import pytest

from downloads.choose import (
    ChoiceError,
    Route,
    artifact_choose,
    client_facts,
    manifest_name,
    plan_make,
)
from tests.downloads_support import LATEST, OLD, UA, manifests

LATEST_MAC = manifests()[f"td-latest-mac-build-{LATEST}.json"]
OLD_MAC = manifests()[f"td-latest-mac-build-{OLD}.json"]
OLD_LINUX = manifests()[f"td-latest-linux-build-{OLD}.json"]
LATEST_WINDOWS = manifests()[f"td-latest-build-{LATEST}.json"]


@pytest.mark.parametrize(
    ("ua", "platform", "mac_universal"),
    [
        ("chrome-win10", "windows", False),
        ("edge-win11", "windows", False),
        ("safari-10.14", "mac", False),
        ("chrome-10.14", "mac", False),
        ("firefox-mac-10.14", "mac", False),
        ("safari-10.15", "mac", True),
        ("chrome-10.15", "mac", True),
        ("safari-14", "mac", True),
        ("chrome-14", "mac", True),
        ("firefox-mac", "mac", True),
        ("firefox-linux", "linux", False),
        ("firefox-ubuntu", "linux", False),
        ("chromeos", "linux", False),
        ("curl", "windows", False),
    ],
)
def test_it_reads_platform_and_mac_capability_from_real_user_agents(ua, platform, mac_universal):
    facts = client_facts(UA[ua])
    assert facts.platform == platform
    assert facts.mac_universal is mac_universal


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 11_2_3) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/89.0.4389.90 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 26_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 Safari/605.1.15",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 16.0; rv:140.0) Gecko/20100101 Firefox/140.0",
    ],
)
def test_it_treats_macos_11_and_any_later_version_as_universal_capable(ua):
    assert client_facts(ua).mac_universal


@pytest.mark.parametrize(
    ("ua", "platform"),
    [
        # As the original's parser read them: "Linux" in Android's, "Mac OS X" in iOS's UA.
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
            "linux",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "mac",
        ),
        ("Wget/1.21.3", "windows"),
        ("Mozilla/5.0 (X11; FreeBSD amd64; rv:125.0) Gecko/20100101 Firefox/125.0", "windows"),
    ],
)
def test_phones_and_other_systems_follow_the_original(ua, platform):
    assert client_facts(ua).platform == platform


def test_a_user_agent_that_is_not_a_mac_is_never_universal_capable():
    assert not client_facts("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)").mac_universal


@pytest.mark.parametrize(
    ("platform", "version", "build", "name"),
    [
        ("windows", None, None, "td-latest.json"),
        ("mac", None, None, "td-latest-mac.json"),
        ("linux", None, None, "td-latest-linux.json"),
        ("windows", "1.2.0", None, "td-latest-1.2.0.json"),
        ("mac", "1.2.0", None, "td-latest-mac-1.2.0.json"),
        ("linux", None, "abc123", "td-latest-linux-build-abc123.json"),
    ],
)
def test_it_names_the_manifest_like_the_original(platform, version, build, name):
    assert manifest_name(platform, app_version=version, build_id=build) == name


@pytest.mark.parametrize(
    ("route", "user_agent", "message"),
    [
        (Route(platform="mac<script>"), UA["curl"], "URL is invalid (platform)"),
        (Route(platform="mac", artifact_name="dmg\"'"), UA["curl"], "URL is invalid (artifactName)"),
        (Route(platform="mac", artifact_name="dmg", arch="x64/../"), UA["curl"], "URL is invalid (arch)"),
        (Route(app_version="1.0.0 onload=alert(1)"), UA["curl"], "URL is invalid (appVersion)"),
        (Route(build_id="abc_123"), UA["curl"], "URL is invalid (buildId)"),
        (Route(platform=""), UA["curl"], "URL is invalid (platform)"),
        (Route(platform="ios"), UA["curl"], "Unsupported platform (ios)"),
        (Route(platform="Mac"), UA["curl"], "Unsupported platform (Mac)"),
        (Route(platform="mac", artifact_name="dmg", arch="x86"), UA["curl"], "Unsupported architecture (x86)"),
        (Route(platform="mac"), "", "No userAgent argument given"),
        (Route(platform="mac"), None, "No userAgent argument given"),
    ],
)  # fmt: skip
def test_it_rejects_bad_parameters_with_the_original_400_messages(route, user_agent, message):
    with pytest.raises(ChoiceError) as caught:
        plan_make(route, user_agent)
    assert (caught.value.status, caught.value.message) == (400, message)


def test_it_checks_parameter_characters_before_the_platform_and_the_user_agent():
    with pytest.raises(ChoiceError) as caught:
        plan_make(Route(platform="nope", arch="<x>"), None)
    assert caught.value.message == "URL is invalid (arch)"


def choose(route: Route, ua: str, manifest: dict) -> tuple[str, str, str]:
    choice = artifact_choose(plan_make(route, UA[ua]), manifest)
    return choice.artifact_name, choice.arch, choice.entry["url"].rsplit("/", 1)[-1]


def test_a_capable_mac_gets_the_universal_installer_of_the_latest_release():
    assert choose(Route(platform="mac"), "safari-14", LATEST_MAC)[:2] == ("installer", "universal")


def test_an_old_mac_gets_the_intel_dmg_and_never_the_installer():
    assert choose(Route(platform="mac"), "safari-10.14", LATEST_MAC)[:2] == ("dmg", "x64")


def test_a_version_or_build_route_on_mac_skips_the_installer_by_default():
    assert choose(Route(platform="mac", build_id=LATEST), "safari-14", LATEST_MAC)[:2] == (
        "dmg",
        "universal",
    )
    assert choose(Route(platform="mac", app_version="1.2.0"), "chrome-14", LATEST_MAC)[0] == "dmg"


def test_the_installer_can_still_be_asked_for_by_name_on_a_build_route():
    route = Route(platform="mac", artifact_name="INSTALLER", build_id=LATEST)
    assert choose(route, "safari-14", LATEST_MAC)[:2] == ("installer", "universal")
    # An old macOS asking with an explicit universal arch gets it too (the site decided).
    route = Route(platform="mac", artifact_name="installer", arch="universal")
    assert choose(route, "safari-10.14", LATEST_MAC)[:2] == ("installer", "universal")


def test_a_missing_universal_entry_falls_back_to_x64_then_arm64():
    assert choose(Route(platform="mac"), "safari-14", OLD_MAC)[:2] == ("dmg", "x64")
    arm_only = {"artifacts": {"dmg": {"arm64": {"url": "https://x/arm.dmg"}}}}
    assert choose(Route(platform="mac"), "safari-14", arm_only) == ("dmg", "arm64", "arm.dmg")


def test_an_arch_given_in_the_route_has_no_fallback():
    with pytest.raises(ChoiceError) as caught:
        choose(Route(platform="mac", artifact_name="dmg", arch="universal"), "safari-14", OLD_MAC)
    assert (caught.value.status, caught.value.message) == (
        404,
        "Couldn't find mac app (dmg-universal)",
    )


def test_artifact_names_match_case_insensitively():
    assert choose(Route(platform="linux", artifact_name="appimage"), "curl", OLD_LINUX)[0] == (
        "appImage"
    )
    assert choose(Route(platform="linux", artifact_name="RPM"), "curl", OLD_LINUX)[0] == "rpm"


def test_an_artifact_of_another_platform_falls_back_to_the_preference_list():
    assert choose(Route(platform="windows", artifact_name="dmg"), "curl", LATEST_WINDOWS)[:2] == (
        "nsis",
        "x64",
    )


def test_a_disabled_artifact_type_is_skipped_in_the_preference_list():
    # nsis-web is null in the manifest: nsis is the first present.
    assert choose(Route(platform="windows"), "edge-win11", LATEST_WINDOWS)[0] == "nsis"


def test_a_platform_without_any_artifact_is_a_404_with_the_original_message():
    plan = plan_make(Route(platform="linux", build_id="abc"), UA["curl"])
    with pytest.raises(ChoiceError) as caught:
        artifact_choose(plan, {"version": "1.0.0", "artifacts": {"snap": None}})
    assert (caught.value.status, caught.value.message) == (404, "Couldn't find linux app")


def test_a_missing_arch_on_a_build_route_names_the_build_in_the_message():
    plan = plan_make(Route(platform="mac", artifact_name="dmg", arch="ia32", build_id="b1"), "x")
    with pytest.raises(ChoiceError) as caught:
        artifact_choose(plan, LATEST_MAC)
    assert caught.value.message == "Couldn't find mac app (dmg-ia32) and build ID b1"


def test_a_manifest_of_the_wrong_shape_is_a_404_not_a_crash():
    plan = plan_make(Route(platform="mac"), UA["safari-14"])
    for manifest in (
        {},
        {"artifacts": []},
        {"artifacts": {"dmg": "x"}},
        {"artifacts": {"dmg": {"x64": 3}}},
    ):
        with pytest.raises(ChoiceError) as caught:
            artifact_choose(plan, manifest)
        assert caught.value.status == 404


def test_a_padded_user_agent_is_read_from_its_start():
    padded = UA["safari-14"] + " " + "x" * 20000
    assert client_facts(padded) == client_facts(UA["safari-14"])
