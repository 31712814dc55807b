"""Fixtures for tests/releases/; the ones every package uses are in tests/conftest.py.

The fake ToDesktop origin (`tests.fakes.todesktop_origin`), defined once here:

- `origin`: one origin serving `FakeBuild()`, with TODESKTOP_DOWNLOAD_BASE_URL pointed at it;
- `origin_for(build)`: start more (or other) builds; the last one started is the one
  TODESKTOP_DOWNLOAD_BASE_URL names;
- `webhook_origin`: the origin serving the build the signed webhook bodies of
  `tests.webhook_support` name, with those webhook settings;
- `origin_settings`: the settings the three apply besides the URL (10 ms between HTTP
  retries). A module whose tests need other ones (fewer retries, a smaller staging pool)
  overrides this fixture with a dict of them.
"""

from __future__ import annotations

import pytest

from tests.fakes.todesktop_origin import FakeBuild, FakeOrigin, start_origin
from tests.promotion_support import WEBHOOK_SECRET
from tests.webhook_support import APP_ID, BUILD_ID


@pytest.fixture
def origin_settings() -> dict:
    return {}


@pytest.fixture
def origin_for(settings, origin_settings):
    started: list[FakeOrigin] = []

    def start(build: FakeBuild | None = None) -> FakeOrigin:
        server = start_origin(build or FakeBuild())
        settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
        started.append(server)
        return server

    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    for name, value in origin_settings.items():
        setattr(settings, name, value)
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def origin(origin_for) -> FakeOrigin:
    return origin_for()


@pytest.fixture
def webhook_origin(webhook_settings, origin_for) -> FakeOrigin:
    return origin_for(FakeBuild(app_id=APP_ID, build_id=BUILD_ID))


@pytest.fixture
def github_settings(settings):
    """The GitHub webhook's secret and the release repository, without the GitHub review
    backend (the `fake_github` fixture of tests/conftest.py adds that)."""
    settings.GITHUB_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.GITHUB_OWNER = "acme"
    settings.GITHUB_REPO = "desktop-releases"
