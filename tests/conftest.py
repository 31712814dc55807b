from __future__ import annotations

import pytest
from django.test import override_settings

from releases.integrations import buckets
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


@pytest.fixture(scope="session")
def s3_server():
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture
def fs_buckets(tmp_path, settings):
    """Filesystem buckets under a fresh directory, prepared as `migrate` prepares them."""
    settings.STORAGE_BACKEND = "filesystem"
    settings.BUCKETS_DIR = tmp_path / "buckets"
    buckets.reset()
    buckets.buckets_prepare()
    yield
    buckets.reset()


@pytest.fixture
def s3_buckets(s3_server, settings):
    """Both buckets on the S3 server, created empty for this test."""
    server = s3_server
    server.reset()
    client = server.client()
    for name in (settings.STAGING_BUCKET, settings.PRODUCTION_BUCKET):
        client.create_bucket(Bucket=name)
    settings.STORAGE_BACKEND = "s3"
    settings.AWS_S3_ENDPOINT_URL = server.url
    settings.AWS_S3_REGION_NAME = "us-east-1"
    settings.S3_CREDENTIALS = {
        role: {"access_key": "testing", "secret_key": "testing"} for role in settings.S3_ROLES
    }
    buckets.reset()
    yield server
    buckets.reset()


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
