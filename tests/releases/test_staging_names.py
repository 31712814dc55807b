"""Which build owns a file name (releases.services.ownership), as staging and promotion ask."""

from __future__ import annotations

import pytest

from releases.models import Build, BuildFile
from releases.services.ownership import names_refusal

pytestmark = pytest.mark.django_db

OWN = "250210vv2q75v93"
LIVE = "250101live00001"


@pytest.fixture
def builds():
    own = Build.objects.create(build_id=OWN, app_id="app1")
    live = Build.objects.create(build_id=LIVE, app_id="app1")
    return own, live


OWN_NAMES = [
    f"td-latest-build-{OWN}.json",
    f"td-latest-mac-build-{OWN}.json",
    f"latest-linux-build-{OWN}.yml",
    f"latest-linux-arm64-build-{OWN}.yml",
    f"My App Setup 1.2.0 - Build {OWN}-x64.exe",
    f"My App Setup 1.2.0 - Build {OWN}-x64.exe.blockmap",
    f"my-app-1.2.0-build-{OWN}-x64.nsis.7z",
    f"my-app_1.2.0-build-{OWN}_amd64.deb",
    f"My App-1.2.0-build-{OWN}-arm64-mac.zip",
    "Build Buddy Setup 1.2.0.exe",  # an app named "Build …": no build has the id "Buddy"
]


def test_a_build_may_stage_its_own_names(builds):
    own, _ = builds
    assert names_refusal(build=own, names=OWN_NAMES) == ""


@pytest.mark.parametrize(
    "name",
    [
        f"latest-mac-build-{LIVE}.yml",
        f"latest-linux-arm64-build-{LIVE}.yml",
        f"td-latest-build-{LIVE}.json",
        f"beta-mac-build-{LIVE}.yml",  # another channel: the feed resolves it the same way
        "latest-mac-build-240000unknown.yml",  # a build we do not know yet is no better
        "latest-mac.yml",  # a bare channel file would be served when no rule names a build
        f"latest-build-{OWN}-mac.yml",  # the feed reads this form itself; never stored
    ],
)
def test_a_channel_manifest_must_be_named_for_the_build_itself(builds, name):
    own, _ = builds
    refused = names_refusal(build=own, names=[*OWN_NAMES, name])
    assert refused.startswith(f"refused file name {name!r}: a build's manifests must be named")


@pytest.mark.parametrize(
    "name",
    [
        f"My App Setup 1.2.0 - Build {LIVE}-x64.exe",
        f"My App 1.2.0 - Build {LIVE}.dmg.blockmap",
        f"my-app_1.2.0-build-{LIVE}_amd64.deb",
    ],
)
def test_a_name_carrying_another_builds_id_is_refused(builds, name):
    own, _ = builds
    refused = names_refusal(build=own, names=[name])
    assert refused == f"refused file name {name!r}: it carries the id of build {LIVE}"


def test_an_id_that_merely_starts_like_ours_is_another_build(builds):
    own, _ = builds
    Build.objects.create(build_id=f"{OWN}x", app_id="app1")
    name = f"My App Setup 1.2.0 - Build {OWN}x-x64.exe"
    assert "carries the id of build" in names_refusal(build=own, names=[name])


def test_a_name_without_an_id_belongs_to_the_first_build_that_staged_it(builds):
    own, live = builds
    BuildFile.objects.create(build=live, name="vendor-runtime.zip", size=1)

    refused = names_refusal(build=own, names=["vendor-runtime.zip"])

    assert refused.startswith("refused file name 'vendor-runtime.zip': build")
    assert LIVE in refused and "staged it first" in refused
    assert names_refusal(build=live, names=["vendor-runtime.zip"]) == ""


def test_a_name_carrying_our_id_is_ours_even_when_another_build_staged_it_first(builds):
    own, live = builds
    name = f"My App Setup 1.2.0 - Build {OWN}-x64.exe"
    BuildFile.objects.create(build=live, name=name, size=1)  # squatted before we existed

    assert names_refusal(build=own, names=[name]) == ""
    assert "carries the id of build" in names_refusal(build=live, names=[name])


def test_every_refused_name_is_counted_once(builds):
    own, _ = builds
    names = [f"latest-mac-build-{LIVE}.yml", f"App - Build {LIVE}.zip"]
    BuildFile.objects.create(build=Build.objects.get(build_id=LIVE), name=names[1], size=1)

    assert names_refusal(build=own, names=names).endswith("(and 1 more)")
