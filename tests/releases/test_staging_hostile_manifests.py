"""A manifest cannot make staging contact another host or write outside `<buildId>/`."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import yaml

from releases.integrations import buckets
from releases.models import Build, BuildStatus, ReleaseRequest
from releases.services.staging import build_stage
from tests.fakes.todesktop_origin import FakeBuild, start_origin

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fs_buckets")]


@pytest.fixture
def origin(settings):
    server = start_origin(FakeBuild())
    settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    yield server
    server.stop()


@pytest.fixture
def other_host():
    """Another server that must never be asked for anything."""
    server = start_origin(FakeBuild())
    yield server
    server.stop()


def make_release(fake: FakeBuild) -> ReleaseRequest:
    build = Build.objects.create(build_id=fake.build_id, app_id=fake.app_id)
    return ReleaseRequest.objects.create(build=build, payload={"buildId": fake.build_id})


def everything_in_staging() -> list[str]:
    return [info.key for info in buckets.staging().list("")]


def test_an_artifact_url_on_another_host_is_fetched_from_todesktop_only(origin, other_host):
    fake = origin.build
    td = fake.td_manifest("windows")
    exe = fake.layout["windows"]["nsis"]["x64"]
    td["artifacts"]["nsis"]["x64"]["url"] = f"{other_host.url}/{fake.app_id}/{quote(exe)}"
    origin.serve(fake.td_name("windows"), json.dumps(td).encode())
    release = make_release(fake)
    build_stage(release_id=release.pk)

    assert other_host.log == []
    assert [entry.status for entry in origin.requested(exe)] == [200]
    build = Build.objects.get(pk=release.build_id)
    assert build.status in (BuildStatus.STAGED, BuildStatus.IN_REVIEW)
    assert build.files.get(name=exe).source_url.startswith(origin.url)


def test_a_url_on_another_host_with_another_name_is_never_requested_there(origin, other_host):
    fake = origin.build
    td = fake.td_manifest("linux")
    td["artifacts"]["snap"] = {"x64": {"url": f"{other_host.url}/steal/secret%20file.snap"}}
    origin.serve(fake.td_name("linux"), json.dumps(td).encode())
    release = make_release(fake)
    build_stage(release_id=release.pk)

    assert other_host.log == []
    assert [entry.status for entry in origin.requested("secret file.snap")] == [404]
    build = Build.objects.get(pk=release.build_id)
    assert build.status == BuildStatus.FAILED
    assert "secret file.snap: not found at ToDesktop" in build.failure_reason


HOSTILE_URLS = [
    "https://download.todesktop.com/a/..%2F..%2Fescape.exe",
    "https://download.todesktop.com/a/%2E%2E",
    "https://download.todesktop.com/a/..",
    "https://download.todesktop.com/a/evil%5C..%5Cescape.exe",
    "https://download.todesktop.com/a/nul%00escape.exe",
    "https://download.todesktop.com/a/tab%09escape.exe",
    "https://download.todesktop.com/a/",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_a_td_manifest_name_escaping_the_prefix_fails_the_build_and_writes_nothing(
    origin, url, tmp_path
):
    fake = origin.build
    td = fake.td_manifest("mac")
    td["artifacts"]["zip"]["x64"]["url"] = url
    origin.serve(fake.td_name("mac"), json.dumps(td).encode())
    release = make_release(fake)
    build_stage(release_id=release.pk)

    build = Build.objects.get(pk=release.build_id)
    assert build.status == BuildStatus.FAILED
    assert "unsafe file name" in build.failure_reason
    assert fake.td_name("mac") in build.failure_reason
    assert everything_in_staging() == []
    assert not list(tmp_path.rglob("*escape*"))
    assert {entry.name for entry in origin.log} <= set(origin.documents)  # manifests only
    release.refresh_from_db()
    assert release.state == "failed"


@pytest.mark.parametrize("field", ["files", "path", "packages"])
def test_a_yml_name_escaping_the_prefix_fails_the_build_and_writes_nothing(origin, field):
    fake = origin.build
    yml = fake.yml_manifest("windows")
    if field == "files":
        yml["files"][0]["url"] = "..%2F..%2Fescape.exe"
    elif field == "path":
        yml["path"] = "%2E%2E"
    else:
        yml["packages"]["x64"]["path"] = "sub\\..\\escape.7z"
    origin.serve(fake.yml_name("windows"), yaml.safe_dump(yml).encode())
    release = make_release(fake)
    build_stage(release_id=release.pk)

    build = Build.objects.get(pk=release.build_id)
    assert build.status == BuildStatus.FAILED
    assert "unsafe file name" in build.failure_reason
    assert everything_in_staging() == []


def test_a_plain_last_segment_of_a_relative_yml_url_is_used(origin):
    """`files[].url` in a yml may be a path; only its last segment names the file."""
    fake = origin.build
    yml = fake.yml_manifest("linux")
    appimage = fake.layout["linux"]["appImage"]["x64"]
    yml["files"][0]["url"] = f"some/dir/{quote(appimage)}"
    origin.serve(fake.yml_name("linux"), yaml.safe_dump(yml).encode())
    release = make_release(fake)
    build_stage(release_id=release.pk)
    build = Build.objects.get(pk=release.build_id)
    assert build.status in (BuildStatus.STAGED, BuildStatus.IN_REVIEW)
    assert build.files.get(name=appimage).verification == "verified"
