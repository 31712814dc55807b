"""Adoption counting (README: Adoption): polls, unique installs, downloads and link hits,
counted in each web process's memory and flushed in batches; never an id or an address."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import connection

from adoption.models import AdoptionCount, AdoptionSketch
from releases.integrations import buckets
from releases.models import Build, BuildFile
from tests.cdn_support import ROOT, build, publish
from tests.fakes.s3_server import free_port
from tests.promotion_support import subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)
CLIENT_IP = "198.51.100.77"
FILE = "App Setup 2.0.0 - Build b200-x64.exe"


@pytest.fixture(autouse=True)
def fresh_counts():
    """Start from nothing: what this process counted for an earlier test was dropped
    (tests/conftest.py), but its flush may land after that test's tables were emptied."""
    time.sleep(0.05)  # a flush already under way finishes
    AdoptionCount.objects.all().delete()
    AdoptionSketch.objects.all().delete()


@pytest.fixture
def prod(fs_buckets):
    bucket = buckets.production(role="promoter")
    publish(
        bucket,
        files={
            "latest-build-b100.yml": b"version: 1.0.0\n",
            "latest-build-b200.yml": b"version: 2.0.0\n",
            FILE: bytes(range(256)) * 40,
        },
        builds=[build("b100", "1.0.0"), build("b200", "2.0.0")],
        releases={"latestReleaseBuildId": "b200"},
    )
    owner = Build.objects.create(build_id="b200", app_id="app1", version="2.0.0")
    BuildFile.objects.create(build=owner, name=FILE, size=256 * 40)
    return bucket


@pytest.fixture
def reader(client):
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_adoptioncount"))
    client.force_login(user)
    return client


def until(check, timeout: float):
    """The first truthy answer of `check` within `timeout` seconds (else the last answer)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


@pytest.fixture
def replicas(prod):
    """Two gunicorn workers (two processes that count apart) on this test's database."""
    port = free_port()
    env = subprocess_env(
        ADOPTION_COUNTING="true",
        ADOPTION_FLUSH_SECONDS="1",
        TRUSTED_CLIENT_IP_HEADER="X-Forwarded-For",
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
    )
    command = [
        sys.executable, "-m", "gunicorn", "selfhosted.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--worker-class", "gthread",
        "--threads", "2", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    assert until(lambda: _answers(url), 60), "gunicorn did not start"
    yield url
    process.terminate()
    process.wait(timeout=20)


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code in (200, 503)
    except requests.RequestException:
        return False


@pytest.mark.slow  # starts gunicorn replicas and manage.py
def test_500_polls_from_123_installs_are_counted_within_one_flush_interval(replicas, reader):
    ids = [str(uuid.uuid4()) for _ in range(123)]
    session = requests.Session()
    for index in range(500):
        answer = session.get(
            f"{replicas}/update/latest.yml?noCache={index}",
            headers={"x-user-staging-id": ids[index % 123], "X-Forwarded-For": CLIENT_IP},
        )
        assert answer.status_code == 200
    sent = time.monotonic()

    def summary():
        body = reader.get("/api/adoption/", {"build": "b200"}).json()
        return body if body["polls"] == 500 else None

    body = until(summary, timeout=settings.ADOPTION_FLUSH_SECONDS + 1.5)
    assert body is not None, reader.get("/api/adoption/", {"build": "b200"}).json()
    assert time.monotonic() - sent <= settings.ADOPTION_FLUSH_SECONDS + 1.5
    assert abs(body["unique_installs"] - 123) <= 123 * 0.02, body
    assert body["build"] == "b200" and body["full_downloads"] == 0
    assert reader.get("/api/adoption/", {"build": "b100"}).json()["polls"] == 0

    dump = subprocess.run(
        ["pg_dump", "--data-only", _dsn()], capture_output=True, check=True
    ).stdout
    assert b"adoption_adoptionsketch" in dump  # the dump does hold the adoption tables
    for staging_id in ids:
        for form in (staging_id, staging_id.replace("-", ""), uuid.UUID(staging_id).bytes.hex()):
            assert form.encode() not in dump.lower()
    assert CLIENT_IP.encode() not in dump


def _dsn() -> str:
    db = connection.settings_dict
    return f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.mark.slow  # waits for the counting's 1 s flush
def test_full_and_ranged_downloads_count_per_file_of_their_build(client, prod, settings, reader):
    settings.ADOPTION_COUNTING = True
    path = "/update/" + FILE.replace(" ", "%20")
    assert client.get(path).status_code == 200
    assert client.get(path, headers={"range": "bytes=0-9"}).status_code == 206
    assert client.get(path, headers={"range": "bytes=10-19,30-39"}).status_code == 206
    assert client.head(path).status_code == 200  # not a download

    def counted():
        body = reader.get("/api/adoption/", {"build": "b200"}).json()
        return body if body["differential_downloads"] == 2 else None

    body = until(counted, timeout=settings.ADOPTION_FLUSH_SECONDS + 1.5)
    assert body and body["full_downloads"] == 1, body
    rows = AdoptionCount.objects.filter(name=FILE)
    assert {(r.metric, r.platform, r.build_id) for r in rows} == {
        ("full_download", "windows", "b200"),
        ("differential_download", "windows", "b200"),
    }


@pytest.mark.slow  # waits for the counting's 1 s flush
def test_nothing_is_counted_when_counting_is_off(client, prod, settings):
    settings.ADOPTION_COUNTING = False
    client.get("/update/latest.yml", headers={"x-user-staging-id": str(uuid.uuid4())})
    time.sleep(settings.ADOPTION_FLUSH_SECONDS + 0.5)
    assert not AdoptionCount.objects.exists()


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ({}, "build: give a build id"),
        ({"build": "../etc"}, "build: give a build id"),
        ({"build": "b200", "since": "yesterday"}, "since: must be an ISO-8601"),
        ({"build": "b200", "since": "2999-01-01T00:00:00Z"}, "since: must not be in the future"),
    ],
)
def test_bad_api_queries_get_a_clear_400(reader, query, why):
    answer = reader.get("/api/adoption/", query)
    assert answer.status_code == 400 and why in answer.json()["error"]


def test_the_api_needs_the_view_permission(client):
    client.force_login(User.objects.create_user("nobody", is_staff=True))
    assert client.get("/api/adoption/", {"build": "b200"}).status_code == 403
    client.logout()
    assert client.get("/api/adoption/", {"build": "b200"}).status_code in (401, 403)


@pytest.mark.slow  # waits for the counting's 1 s flush
def test_metrics_expose_the_counts_as_counters(client, prod, settings):
    settings.ADOPTION_COUNTING = True
    for _ in range(3):
        client.get("/update/latest.yml", headers={"x-user-staging-id": str(uuid.uuid4())})
    assert until(lambda: AdoptionCount.objects.filter(metric="poll").exists(), 3)
    text = client.get("/metrics").content.decode()
    assert "# TYPE adoption_polls_total counter" in text
    assert 'adoption_polls_total{platform="windows"} 3.0' in text


@pytest.mark.slow  # waits for the counting's 1 s flush
def test_the_build_page_shows_its_own_numbers(client, prod, settings):
    settings.ADOPTION_COUNTING = True
    for _ in range(4):
        client.get("/update/latest.yml", headers={"x-user-staging-id": str(uuid.uuid4())})
    assert until(lambda: AdoptionCount.objects.filter(metric="poll").exists(), 3)
    client.force_login(User.objects.create_superuser("root"))
    page = client.get(f"/admin/releases/build/{Build.objects.get(build_id='b200').pk}/change/")
    assert b"4 installs, 4 polls, 0 full and 0 differential" in page.content


def test_a_download_handed_to_the_bucket_counts_as_a_full_download(
    client, s3_buckets, settings, reader
):
    settings.ADOPTION_COUNTING = True
    settings.S3_REDIRECT, settings.S3_REDIRECT_MIN_BYTES = "presigned", 1
    publish(
        buckets.production(role="promoter"),
        files={FILE: bytes(range(256)) * 40},
        builds=[build("b200", "2.0.0")],
        releases={"latestReleaseBuildId": "b200"},
    )
    owner = Build.objects.create(build_id="b200", app_id="app1", version="2.0.0")
    BuildFile.objects.create(build=owner, name=FILE, size=256 * 40)
    assert client.get("/update/" + FILE.replace(" ", "%20")).status_code == 302

    def counted():
        body = reader.get("/api/adoption/", {"build": "b200"}).json()
        return body if body["full_downloads"] == 1 else None

    assert until(counted, timeout=settings.ADOPTION_FLUSH_SECONDS + 1.5)
