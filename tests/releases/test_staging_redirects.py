"""A download host cannot make the staging worker fetch anything from inside: redirects are
followed only to allowed origins, and connections only reach public addresses."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from releases.integrations import buckets, egress
from releases.models import Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services.staging import build_stage
from tests.fakes.todesktop_origin import FakeBuild, start_origin

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fs_buckets")]

CANARY_PATH = "/latest/meta-data/iam/security-credentials/role"


@pytest.fixture
def origin(settings):
    server = start_origin(FakeBuild())
    settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
    settings.TODESKTOP_REDIRECT_HOSTS = []
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    settings.HTTP_MAX_RETRIES = 2
    yield server
    server.stop()


@pytest.fixture
def inside():
    """Another loopback port, standing for the metadata service or an internal API."""
    server = start_origin(FakeBuild())
    server.serve("role", b"CANARY-SECRET aws_secret_access_key=AKIA")
    yield server
    server.stop()


def make_release(fake: FakeBuild) -> ReleaseRequest:
    build = Build.objects.create(build_id=fake.build_id, app_id=fake.app_id)
    return ReleaseRequest.objects.create(build=build, payload={"buildId": fake.build_id})


def staged_keys() -> list[str]:
    return [info.key for info in buckets.staging().list("")]


def redirected_names(fake: FakeBuild) -> dict[str, str]:
    exe = fake.layout["windows"]["nsis"]["x64"]
    return {
        "an artifact": exe,
        "a blockmap": f"{exe}.blockmap",
        "a td manifest": fake.td_name("windows"),
        "a yml manifest": fake.yml_name("mac"),
    }


@pytest.mark.parametrize("kind", ["an artifact", "a blockmap", "a td manifest", "a yml manifest"])
def test_a_redirect_to_another_loopback_port_fails_the_build_and_reaches_nothing(
    origin, inside, kind
):
    fake = origin.build
    name = redirected_names(fake)[kind]
    origin.redirect(name, f"{inside.url}{CANARY_PATH}")
    release = make_release(fake)

    build_stage(release_id=release.pk)

    assert inside.log == []  # the other port received no request at all
    build = Build.objects.get(pk=release.build_id)
    release.refresh_from_db()
    assert build.status == BuildStatus.FAILED and release.state == ReleaseState.FAILED
    assert f"redirect to {inside.url}{CANARY_PATH} refused" in build.failure_reason
    assert "not the download host's origin" in build.failure_reason
    assert not [key for key in staged_keys() if key.endswith(name)]
    assert len(origin.requested(name)) == 1  # refused for good, not retried as transient


def test_a_redirect_to_an_allow_listed_origin_is_followed(origin, settings):
    cdn = start_origin(origin.build)
    try:
        settings.TODESKTOP_REDIRECT_HOSTS = [cdn.url]
        fake = origin.build
        exe = fake.layout["windows"]["nsis"]["x64"]
        for name in (exe, f"{exe}.blockmap", fake.td_name("windows")):
            origin.redirect(name, f"{cdn.url}/{fake.app_id}/{quote(name)}", status=307)
        release = make_release(fake)

        build_stage(release_id=release.pk)

        build = Build.objects.get(pk=release.build_id)
        assert build.status in (BuildStatus.STAGED, BuildStatus.IN_REVIEW), build.failure_reason
        assert build.files.get(name=exe).verification == "verified"
        assert build.files.get(name=f"{exe}.blockmap").size == fake.files[f"{exe}.blockmap"].size
        for name in (exe, f"{exe}.blockmap", fake.td_name("windows")):
            assert [entry.status for entry in cdn.requested(name)] == [200]
    finally:
        cdn.stop()


def test_a_relative_redirect_on_the_download_host_is_followed(origin):
    fake = origin.build
    exe = fake.layout["mac"]["zip"]["x64"]
    origin.serve("copy.zip", fake.files[exe].content())
    origin.redirect(exe, f"/{fake.app_id}/elsewhere/../copy.zip?token=1")
    release = make_release(fake)

    build_stage(release_id=release.pk)

    build = Build.objects.get(pk=release.build_id)
    assert build.status in (BuildStatus.STAGED, BuildStatus.IN_REVIEW), build.failure_reason
    assert build.files.get(name=exe).verification == "verified"
    assert [entry.status for entry in origin.requested(exe)] == [302]
    assert [entry.status for entry in origin.requested("copy.zip")] == [200]


def test_an_allow_listed_host_name_that_resolves_to_loopback_is_never_connected_to(
    origin, settings
):
    settings.TODESKTOP_REDIRECT_HOSTS = ["localhost"]
    fake = origin.build
    exe = fake.layout["linux"]["appImage"]["x64"]
    origin.redirect(exe, "https://localhost/role")
    release = make_release(fake)

    build_stage(release_id=release.pk)

    build = Build.objects.get(pk=release.build_id)
    assert build.status == BuildStatus.FAILED
    assert "localhost resolves to" in build.failure_reason
    assert "loopback" in build.failure_reason
    assert len(origin.requested(exe)) == 1


def test_a_redirect_loop_stops_after_a_few_hops(origin):
    fake = origin.build
    exe = fake.layout["linux"]["deb"]["x64"]
    origin.redirect(exe, f"/{fake.app_id}/{quote(exe)}")
    release = make_release(fake)

    build_stage(release_id=release.pk)

    build = Build.objects.get(pk=release.build_id)
    assert build.status == BuildStatus.FAILED and "more than 5 redirects" in build.failure_reason
    assert len(origin.requested(exe)) == 6


def test_a_refused_redirect_never_shows_the_base_url_credentials(origin, inside, settings):
    settings.TODESKTOP_DOWNLOAD_BASE_URL = origin.url.replace("://", "://mirror:pa55word@")
    fake = origin.build
    origin.redirect(fake.td_name("mac"), f"{inside.url}/x?X-Amz-Signature=s3cr3t")
    release = make_release(fake)

    build_stage(release_id=release.pk)

    build = Build.objects.get(pk=release.build_id)
    assert "refused" in build.failure_reason
    assert "pa55word" not in build.failure_reason and "s3cr3t" not in build.failure_reason
    assert inside.log == []


# --- The rules themselves ------------------------------------------------------------------


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fd00:ec2::254", "private"),
        ("100.100.100.200", "metadata"),
        ("100.64.0.1", "not a public address"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_internal_addresses_are_refused(address, reason):
    assert reason in egress.address_refusal(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert egress.address_refusal(address) is None


BASE = "https://download.example.com/app1/file.exe"


@pytest.mark.parametrize(
    "location, hosts, allowed",
    [
        ("/app1/other.exe", [], "https://download.example.com:443/app1/other.exe"),
        ("https://DOWNLOAD.example.com./a?x=1", [], "https://download.example.com:443/a?x=1"),
        ("https://download.example.com:8443/a", [], None),  # another port: another origin
        ("http://download.example.com/a", [], None),  # another scheme: another origin
        ("https://cdn.example.net/a", [], None),
        ("https://cdn.example.net/a", ["cdn.example.net"], "https://cdn.example.net:443/a"),
        ("http://cdn.example.net/a", ["cdn.example.net"], None),  # listed hosts: https only
        ("https://cdn.example.net:8443/a", ["cdn.example.net"], None),
        ("https://e1.cdn.example.net/a", ["*.cdn.example.net"], "https://e1.cdn.example.net:443/a"),
        ("https://cdn.example.net/a", ["*.cdn.example.net"], None),
        ("https://evilcdn.example.net/a", ["*.cdn.example.net"], None),
        ("http://10.0.0.5:9000/a", ["http://10.0.0.5:9000"], "http://10.0.0.5:9000/a"),
        ("http://10.0.0.5:9001/a", ["http://10.0.0.5:9000"], None),
        ("https://user:pw@download.example.com/a", [], None),  # credentials in a location
        ("https://download.example.com\\@evil.example/a", [], None),
        ("https://evil.example#@download.example.com/a", [], None),
        ("//evil.example/a", [], None),
        ("", [], None),
        ("javascript:alert(1)", [], None),
    ],
)
def test_which_redirects_are_followed(settings, location, hosts, allowed):
    settings.TODESKTOP_DOWNLOAD_BASE_URL = "https://download.example.com"
    settings.TODESKTOP_REDIRECT_HOSTS = hosts
    if allowed is None:
        with pytest.raises(egress.Refused):
            egress.redirect_target(current=BASE, location=location)
    else:
        assert egress.redirect_target(current=BASE, location=location) == allowed
