"""What the feed and the download links keep in memory between requests.

Production objects named with a build id (`latest-mac-build-<id>.yml`, `App Setup 1.2.0 -
Build <id>.exe`) or a version never change once promoted, so their validators, and the bytes of
the small ones (manifests), are kept here: a hot feed request or download link then costs no
bucket round trip at all. The memo is bounded (entries and bytes, least recently used out) and
emptied whenever production's `desktop-*.json` changes (`cdn.metadata.metadata_generation`:
a promotion in this process, or the ETag check every `FEED_METADATA_CHECK_SECONDS` seeing
another process's promotion), so a withdrawn or re-promoted name is read again from the bucket.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any

from cdn.metadata import metadata_generation
from releases.integrations import buckets

MAX_ENTRIES = 4096
MAX_BODY_BYTES = 64 * 1024  # a manifest; bigger files keep only their validators
MAX_TOTAL_BYTES = 32 * 1024 * 1024


class Memo:
    """A bounded LRU map for one bucket, emptied when the metadata generation moves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._generation = -1

    def _sync(self) -> None:
        generation = metadata_generation()
        if generation != self._generation:
            self._entries.clear()
            self._bytes = 0
            self._generation = generation

    def get(self, key: Any) -> Any:
        with self._lock:
            self._sync()
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Any, value: Any, *, size: int = 0, generation: int | None = None) -> None:
        """Keep `value`; with `generation`, only while the metadata is still that generation
        (a value computed from older metadata is dropped rather than kept under the new)."""
        with self._lock:
            self._sync()
            if generation is not None and generation != self._generation:
                return
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while len(self._entries) > MAX_ENTRIES or self._bytes > MAX_TOTAL_BYTES:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def __len__(self) -> int:
        return len(self._entries)


_memos: weakref.WeakKeyDictionary[Any, dict[str, Memo]] = weakref.WeakKeyDictionary()
_memos_lock = threading.Lock()


def memo_for(owner: Any, name: str) -> Memo:
    """The memo `name` of `owner` (a bucket): a new bucket object (new settings) starts empty."""
    with _memos_lock:
        memos = _memos.setdefault(owner, {})
        memo = memos.get(name)
        if memo is None:
            memo = memos[name] = Memo()
        return memo


def memos_reset() -> None:
    """Drop every memo of this process (`selfhosted.caches.caches_reset`)."""
    with _memos_lock:
        _memos.clear()


def objects_memo(bucket: buckets.Bucket) -> Memo:
    """`key → (ObjectInfo, bytes | None)` of immutable production objects."""
    return memo_for(bucket, "objects")


def replies_memo(bucket: buckets.Bucket) -> Memo:
    """Whole feed answers for immutable production objects (cdn/replies.py)."""
    return memo_for(bucket, "replies")
