"""Names no storage can hold are client errors on every backend, never a 5xx."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "name", ["a" * 300 + ".yml", "a" * 300 + ".exe", "/".join(["d" * 200] * 6)]
)
def test_the_feed_answers_400_for_a_name_too_long_to_store(client, any_buckets, name):
    answer = client.get(f"/update/{name}")
    assert answer.status_code == 400
    assert b"invalid path" in answer.content
