"""Resolve a download link to an object in production (docs/download-links.md).

`download_resolve` reads the td manifest through the feed's resolution rules (without IP
rules) and the feed's cached metadata, lets `downloads.choose` pick the artifact, and finds
the object it names. Parsed manifests are cached per key and ETag, so a hot link costs a HEAD
of the manifest and no JSON parsing before the file is served.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from cdn.memory import memo_for
from cdn.metadata import metadata_get
from cdn.resolve import resolve_key
from cdn.serving import immutable_key
from downloads.choose import (
    Choice,
    ChoiceError,
    Plan,
    Route,
    artifact_choose,
    not_found_message,
    plan_make,
)
from releases.integrations import buckets
from releases.integrations.buckets import Bucket, InvalidKey, ObjectInfo, key_storable

logger = logging.getLogger(__name__)

BUILD_MANIFEST = re.compile(r"-build-([A-Za-z0-9.-]+)\.json\Z")
# Enough for every platform of many builds; a full cache is emptied, not grown.
MANIFEST_CACHE_SIZE = 512


@dataclass(frozen=True)
class Resolved:
    plan: Plan
    choice: Choice
    manifest_key: str
    key: str  # the artifact's object key in production
    info: ObjectInfo | None  # only when asked for (`with_info`)

    @property
    def file_name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def build_id(self) -> str | None:
        """The build the manifest belongs to, when its name says so (for pinned links)."""
        match = BUILD_MANIFEST.search(self.manifest_key)
        return match.group(1) if match else None


def download_resolve(*, route: Route, user_agent: str | None, with_info: bool = False) -> Resolved:
    """The production object a link serves; ChoiceError (400/404) with the original's message.

    `with_info` also HEADs the object (for its size); serving HEADs it anyway. A link whose
    manifest is named with a build id (every rule-resolved or pinned link once a build is
    live) is decided once and then answered from memory until production changes.
    """
    plan = plan_make(route, user_agent)
    bucket = buckets.production()
    manifest_key = resolve_key(path=plan.manifest_name, metadata=metadata_get(), client_ip=None)
    decisions = memo_for(bucket, "download-links") if immutable_key(manifest_key) else None
    decided = decisions.get((plan, manifest_key)) if decisions is not None else None
    if decided is None:
        decided = _decide(bucket, plan, manifest_key)
        if decisions is not None and decided[1] is not None:
            decisions.put((plan, manifest_key), decided)
    choice, key = decided
    info = _head(bucket, key) if key is not None and with_info else None
    if key is None or (with_info and info is None):
        raise ChoiceError(404, "Not Found")  # the original's answer for a missing object
    return Resolved(plan, choice, manifest_key, key, info)


def _decide(bucket: Bucket, plan: Plan, manifest_key: str) -> tuple[Choice, str | None]:
    manifest = manifest_read(bucket=bucket, key=manifest_key)
    if manifest is None:
        raise ChoiceError(404, not_found_message(plan, manifest_key))
    choice = artifact_choose(plan, manifest)
    return choice, object_key_pick(bucket=bucket, entry=choice.entry)


_manifests: weakref.WeakKeyDictionary[Bucket, dict[str, tuple[str, dict]]] = (
    weakref.WeakKeyDictionary()
)
_manifests_lock = threading.Lock()


def manifests_reset() -> None:
    """Drop every parsed manifest of this process (`selfhosted.caches.caches_reset`)."""
    with _manifests_lock:
        _manifests.clear()


def manifest_read(*, bucket: Bucket, key: str) -> dict[str, Any] | None:
    """The parsed manifest at `key`, from memory while its ETag is unchanged; None if absent."""
    info = _head(bucket, key)
    if info is None:
        return None
    with _manifests_lock:
        cached = _manifests.setdefault(bucket, {}).get(key)
    if cached is not None and cached[0] == info.etag:
        return cached[1]
    try:
        manifest = json.loads(bucket.read_bytes(key))
    except (buckets.ObjectNotFound, ValueError):
        # Deleted between HEAD and GET, or not JSON: both read as "no manifest here".
        logger.warning("download manifest %s is missing or not JSON", key)
        return None
    if not isinstance(manifest, dict):
        return None
    with _manifests_lock:
        entries = _manifests.setdefault(bucket, {})
        if len(entries) >= MANIFEST_CACHE_SIZE:
            entries.clear()
        entries[key] = (info.etag, manifest)
    return manifest


def object_candidates(entry: dict[str, Any]) -> list[str]:
    """Keys that may hold an entry's file, best first (docs/download-links.md).

    The original reads `path` as the key; staging and promotion put every file at the
    URL-decoded last segment of its URL, so that comes next.
    """
    candidates: list[str] = []
    for field in ("path", "url"):
        value = entry.get(field)
        if not isinstance(value, str) or not value:
            continue
        if field == "path":
            candidates.append(value)
        try:
            last = unquote(urlsplit(value).path.rsplit("/", 1)[-1])
        except ValueError:  # `https://[broken/…`: not a URL, so it names no file
            continue
        candidates.append(last)
    # A name no bucket can hold is absent: asking the storage for it fails there
    # (ENAMETOOLONG, S3's 400) and would read as a 503.
    return list(dict.fromkeys(c for c in candidates if c and key_storable(c)))


def object_key_pick(*, bucket: Bucket, entry: dict[str, Any]) -> str | None:
    """The first candidate key that exists, else the last one.

    The last candidate is taken without a HEAD: serving it HEADs it anyway and answers the
    same 404 when it is absent, so a hot link costs one HEAD less.
    """
    candidates = object_candidates(entry)
    for key in candidates[:-1]:
        if _head(bucket, key) is not None:
            return key
    return candidates[-1] if candidates else None


def _head(bucket: Bucket, key: str) -> ObjectInfo | None:
    if not key_storable(key):
        return None
    try:
        return bucket.head(key)
    except InvalidKey:
        return None
