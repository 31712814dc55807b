"""Fixtures for tests/downloads/; the ones every package uses are in tests/conftest.py."""

from __future__ import annotations

import pytest

from releases.integrations import buckets
from tests.downloads_support import production_write


@pytest.fixture
def production_data(fs_buckets):
    """Production as promotion leaves it (tests.downloads_support), on filesystem buckets."""
    production_write(buckets.production(role="promoter"))
