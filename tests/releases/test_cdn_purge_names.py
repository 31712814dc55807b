"""Which production names a change makes a CDN purge (releases.services.cdn_purge.purge_names)."""

from __future__ import annotations

import json

import pytest

from releases.models import Build, BuildFile
from releases.services.cdn_purge import ControlWrite, purge_names

pytestmark = pytest.mark.django_db


def builds(*entries: tuple[str, str, bool]) -> bytes:
    return json.dumps([{"id": i, "version": v, "isReleased": r} for i, v, r in entries]).encode()


def rules(latest: str | None = None, **redirect_to: list[str]) -> bytes:
    value: dict = {"latestReleaseBuildId": latest} if latest else {}
    value["releaseRedirections"] = [
        {"rule": "buildByPlatform", "buildId": build_id, "platforms": platforms}
        for build_id, platforms in redirect_to.items()
    ]
    return json.dumps(value).encode()


def staged(build_id: str, *names: str) -> None:
    build = Build.objects.create(build_id=build_id, app_id="app")
    for name in names:
        BuildFile.objects.create(build=build, name=name)


def test_a_new_latest_build_purges_its_manifests_channels_and_versions():
    staged("b2", "latest-mac-build-b2.yml", "latest-linux-arm64-build-b2.yml", "App-b2.dmg")
    after = rules("b2")

    names = purge_names(
        copied=["latest-mac-build-b2.yml", "latest-linux-arm64-build-b2.yml", "App-b2.dmg"],
        writes=[
            ControlWrite("desktop-builds.json", builds(), builds(("b2", "2.0.0", True))),
            ControlWrite("desktop-releases.json", None, after),
        ],
        rules_now=after,
    )

    assert names == [
        "desktop-builds.json",
        "desktop-releases.json",
        "latest-linux-arm64-2.0.0.yml",
        "latest-linux-arm64-build-b2.yml",
        "latest-linux-arm64.yml",
        "latest-mac-2.0.0.yml",
        "latest-mac-build-b2.yml",
        "latest-mac.yml",
    ]


def test_a_redirection_moves_the_channels_of_the_builds_it_named_and_names():
    staged("old", "latest-build-old.yml")
    staged("new", "latest-mac-build-new.yml")
    before, after = rules("old", old=["windows"]), rules("old", new=["mac"])

    names = purge_names(
        copied=[], writes=[ControlWrite("desktop-releases.json", before, after)], rules_now=after
    )

    assert names == ["desktop-releases.json", "latest-mac.yml", "latest.yml"]


def test_an_unreleased_or_oddly_versioned_build_has_no_versioned_names_to_purge():
    staged("beta", "latest-build-beta.yml")
    staged("odd", "latest-build-odd.yml")
    after = builds(("beta", "2.0.0", False), ("odd", "2.0.0-beta.1", True))

    names = purge_names(
        copied=[], writes=[ControlWrite("desktop-builds.json", builds(), after)], rules_now=None
    )

    assert names == ["desktop-builds.json"]  # the feed resolves only x.y.z of released builds


def test_a_build_this_install_never_staged_purges_the_standard_channels():
    before, after = rules("mine"), rules("migrated")  # migrated: promoted before this install
    staged("mine", "latest-build-mine.yml")

    names = purge_names(
        copied=[], writes=[ControlWrite("desktop-releases.json", before, after)], rules_now=after
    )

    assert names == [
        "desktop-releases.json",
        "latest-linux.yml",
        "latest-mac.yml",
        "latest.yml",
        "td-latest-linux.json",
        "td-latest-mac.json",
        "td-latest.json",
    ]


def test_a_removed_build_purges_its_versioned_names_and_an_unchanged_file_nothing():
    staged("gone", "td-latest-mac-build-gone.json")
    same = rules("kept")

    names = purge_names(
        copied=[],
        writes=[
            ControlWrite("desktop-builds.json", builds(("gone", "1.0.0", True)), builds()),
            ControlWrite("desktop-releases.json", same, same),
        ],
        rules_now=same,
    )

    assert names == ["desktop-builds.json", "td-latest-mac-1.0.0.json"]


def test_a_corrupt_previous_file_still_purges_what_the_new_one_names():
    staged("b1", "latest-build-b1.yml")
    after = rules("b1")

    names = purge_names(
        copied=[],
        writes=[ControlWrite("desktop-releases.json", b"{not json", after)],
        rules_now=after,
    )

    assert names == ["desktop-releases.json", "latest.yml"]
