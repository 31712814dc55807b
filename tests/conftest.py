from __future__ import annotations

import pytest
from django.test import override_settings

from releases.integrations import buckets
from selfhosted.caches import caches_reset
from tests.buckets_support import filesystem_storages, s3_storages
from tests.fakes.recording_proxy import start_recording_proxy
from tests.fakes.s3_server import start_s3_server

# Fixtures of the release-webhook tests (webhook_settings, staging_queue) and of the
# notification tests (receivers).
pytest_plugins = ["tests.webhook_support", "tests.notify_support"]


# Fixtures that start a server: the S3 server (a moto process), and the loopback fakes that
# run in threads of the test process (ToDesktop origin, GitHub, Cloudflare, notification
# receivers) and pytest-django's live server.
SERVER_FIXTURES = {
    "s3_server": "the S3 server",
    "origin_for": "the fake ToDesktop origin",
    "origin_behind_basic_auth": "the fake ToDesktop origin",
    "github_server": "the fake GitHub",
    "cloudflare": "the fake Cloudflare API",
    "receivers": "the notification receivers",
    "live_server": "Django's live server",
}


def pytest_collection_modifyitems(items):
    """Every test whose fixtures start a server is marked `slow` (`make test-fast` leaves it to
    `make test`), and a test on the S3 server is marked `s3` too. That covers the s3 half of
    `any_buckets`, which reaches the server at run time. Tests that start a server or a process
    in their own body carry the mark themselves."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_s3 = "s3_server" in item.fixturenames or (
            callspec is not None and callspec.params.get("any_buckets") == "s3"
        )
        if on_s3:
            item.add_marker(pytest.mark.s3)
        if on_s3 or SERVER_FIXTURES.keys() & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def fast_password_hasher():
    """Tests create users by the hundred (every admin_client is one): hash their passwords
    with MD5 here instead of the product's PBKDF2 of a million rounds, about half a second
    each. Only in the test process: the servers, workers and `make run` that tests start keep
    the product's hashers."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def fresh_process_caches():
    """Every test starts, and leaves, with the memory of a process that has just started."""
    caches_reset()
    yield
    caches_reset()


@pytest.fixture(scope="session")
def s3_server():
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture
def fs_buckets(tmp_path, settings):
    """Filesystem buckets under a fresh directory, prepared as `migrate` prepares them."""
    filesystem_storages(settings, tmp_path / "buckets")
    buckets.buckets_prepare()


@pytest.fixture
def s3_buckets(s3_server, settings):
    """Both buckets on the S3 server, created empty for this test."""
    server = s3_server
    server.reset()
    client = server.client()
    for name in (settings.STAGING_BUCKET, settings.PRODUCTION_BUCKET):
        client.create_bucket(Bucket=name)
    s3_storages(settings, server.url)
    return server


@pytest.fixture
def s3_proxy(s3_buckets, settings):
    """The buckets on the S3 server through the recording, fault-injecting proxy
    (tests/fakes/recording_proxy.py): `.record` of what crossed the wire, `.fail_puts`."""
    proxy = start_recording_proxy(s3_buckets.url)
    s3_storages(settings, proxy.url)
    yield proxy
    proxy.stop()


@pytest.fixture(params=["filesystem", "s3"])
def any_buckets(request):
    """Run a test once on each bucket backend."""
    if request.param == "filesystem":
        request.getfixturevalue("fs_buckets")
    else:
        request.getfixturevalue("s3_buckets")
    return request.param


@pytest.fixture
def staging(any_buckets):
    return buckets.staging()


@pytest.fixture
def production(any_buckets):
    return buckets.production(role="promoter")


@pytest.fixture(scope="session")
def github_server():
    """The fake GitHub (tests/fakes/github_server.py), one per test session."""
    from tests.fakes.github_server import start_github_server

    server = start_github_server()
    yield server
    server.stop()


@pytest.fixture
def fake_github(github_server, settings):
    """A fresh repository on the fake GitHub, with REVIEW_BACKEND=github pointed at it (token
    auth). Returns the fake's test API: `.files(branch)`, `.pulls()`, `.merge(n)`, `.fail(502)`…"""
    gh = github_server.gh
    gh.reset()
    settings.REVIEW_BACKEND = "github"
    settings.GITHUB_API_URL = github_server.url
    settings.GITHUB_OWNER = gh.owner
    settings.GITHUB_REPO = gh.repo
    settings.GITHUB_TOKEN = "ghp_testtoken"
    settings.GITHUB_APP_ID = ""
    settings.GITHUB_APP_PRIVATE_KEY = ""
    settings.GITHUB_APP_INSTALLATION_ID = 0
    settings.GITHUB_MAX_RETRIES = 3
    settings.GITHUB_SECONDS_BETWEEN_WRITES = 0
    settings.PUBLIC_BASE_URL = "https://releases.example.com"
    return gh


@pytest.fixture
def release_repo(fake_github, settings):
    """The fake GitHub as the release repository: `desktop-builds.json` is `[]` on main, and the
    GitHub webhook accepts the deliveries `tests.promotion_support.deliver_github` signs."""
    from tests.promotion_support import WEBHOOK_SECRET

    settings.GITHUB_WEBHOOK_SECRET = WEBHOOK_SECRET
    fake_github.reset(files={"desktop-builds.json": "[]\n"})
    return fake_github
