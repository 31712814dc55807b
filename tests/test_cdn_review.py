"""Review of the feed against SPEC §8 and the original desktop-cdn worker: edge cases."""

from __future__ import annotations

import pytest

from cdn.serving import feed_filename
from tests.cdn_support import feed_url, publish


@pytest.fixture
def served(production):
    publish(production, files={"App-1.0.0-build-b1-x64.exe": b"exe"}, builds=[], releases={})
    return production


@pytest.mark.parametrize(
    "name",
    [
        "x" * 300 + ".exe",  # one path segment longer than a file name may be (255 bytes)
        "a/" * 520 + "x.exe",  # longer than any S3 key (1,024 bytes)
        "é" * 600 + ".yml",  # 1,204 bytes of UTF-8 in 604 characters
    ],
)
def test_a_name_too_long_to_exist_is_a_404_not_a_storage_error(client, served, name):
    response = client.get(feed_url(name))
    assert response.status_code == 404
    assert response.content == b"Not Found"


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("App Setup 1.0.0 - Build abc123.exe", "App Setup 1.0.0.exe"),
        ("App Setup 1.0.0 - Build abc123.exe.blockmap", "App Setup 1.0.0.exe.blockmap"),
        ("App 1.0.0 - Build abc123-arm64.dmg.blockmap", "App 1.0.0 - arm64.dmg.blockmap"),
    ],
)
def test_a_blockmap_name_drops_the_build_id_like_its_file(key, name):
    assert feed_filename(key) == name
