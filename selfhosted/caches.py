"""What a process keeps in memory between requests and tasks, and one way to forget it all.

Each cache lives beside the code that fills it and knows when to refresh itself (the feed's
metadata checks production's ETags; the bucket clients follow a change of `STORAGES`).
`caches_reset()` empties every one of them at once: the process then behaves as one that has
just started. The test suite calls it around each test (tests/conftest.py), so no test sees
what an earlier one loaded.
"""

from __future__ import annotations

from adoption.counting import discard_pending
from cdn.memory import memos_reset
from cdn.metadata import metadata_reset
from downloads.services import manifests_reset
from releases.integrations import buckets, github
from releases.services.review_backends import review_backend


def caches_reset() -> None:
    """Forget every process cache: bucket clients, the feed's parsed `desktop-*.json`, the
    memos of immutable objects and download decisions, parsed download manifests, GitHub
    clients, the chosen review backend, and the adoption counts not yet flushed."""
    buckets.reset()
    metadata_reset()
    memos_reset()
    manifests_reset()
    github.clients_reset()
    review_backend.cache_clear()
    discard_pending()
