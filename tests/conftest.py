from __future__ import annotations

import pytest

from releases.integrations import buckets
from selfhosted.caches import caches_reset
from tests.buckets_support import filesystem_storages, s3_storages
from tests.fakes.recording_proxy import start_recording_proxy
from tests.fakes.s3_server import start_s3_server

# Fixtures of the release-webhook tests (webhook_settings, staging_queue) and of the
# notification tests (receivers).
pytest_plugins = ["tests.webhook_support", "tests.notify_support"]


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
