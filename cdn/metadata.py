"""Production's `desktop-builds.json` / `desktop-releases.json`, parsed once and kept in memory.

docs/feed.md: the per-request cost must not grow with the number of builds, so every refresh indexes
the released builds by version and pre-parses the redirection rules; a request only does dict
look-ups and walks the (short) rule list.

Freshness across processes (several gunicorn workers; promotion runs in a Celery worker):
- at most every `FEED_METADATA_CHECK_SECONDS` (1 by default) a process compares the validators
  (ETag) of both objects and a version stamp in the Django cache with what it loaded; a change
  reloads;
- `metadata_invalidate()` (called by promotion after it writes the files) bumps the stamp and
  drops this process's copy at once;
- every `FEED_METADATA_TTL_SECONDS` the bytes are re-read whatever the validators say (a safety
  net) and re-parsed only if their digest changed, so a large desktop-builds.json does not
  stall the worker for nothing.
A failed refresh keeps the last good copy and records the error for /healthz. So does a file
that reads but does not parse (truncated, not JSON, wrong shape): the feed keeps serving what
it last parsed from that bucket, and /healthz says `degraded` until a good copy is back.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import ipaddress
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache

from releases.control_files import (
    BUILDS_FILE,
    KIND_NAMES,
    KINDS,
    RELEASES_FILE,
    ControlFileInvalid,
    control_parse,
    control_read,
)
from releases.integrations import buckets

logger = logging.getLogger(__name__)

STAMP_CACHE_KEY = "cdn:metadata-stamp"
PLATFORMS = frozenset({"windows", "mac", "linux"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Rule:
    """One parsed entry of `releaseRedirections` (or the implicit latest-build rule)."""

    kind: str  # build | buildByIp | buildByPlatform | buildByPercentage
    build_id: str
    ips: frozenset[IPAddress] = frozenset()
    platforms: frozenset[str] = frozenset()
    # buildByPercentage: its percentage, schedule ((epoch seconds, percentage), by time), and
    # whether it names no platforms (then it applies to every manifest, like buildByIp).
    percentage: float = 0.0
    schedule: tuple[tuple[float, float], ...] = ()
    all_platforms: bool = False


@dataclass(frozen=True)
class ProductionMetadata:
    builds: tuple[dict, ...] = ()
    releases: dict = field(default_factory=dict)
    released_build_by_version: dict[str, str] = field(default_factory=dict)
    build_ids: frozenset[str] = frozenset()
    errors: tuple[str, ...] = ()
    # Files that did not parse, served from the last good copy (a degraded feed, not a failed one).
    stale: tuple[str, ...] = ()
    # releaseRedirections + {rule: build, buildId: latestReleaseBuildId}, parsed once.
    rules: tuple[Rule, ...] = ()


def parse_ip(value: Any) -> IPAddress | None:
    """An address as an object (so `2001:DB8::7` equals `2001:db8::7`), or None if invalid."""
    if not isinstance(value, str):
        return None
    if len(value) > 64:  # longer than any address: not worth a slot in the cache
        return _parse_ip_text.__wrapped__(value)
    return _parse_ip_text(value)


@functools.lru_cache(maxsize=4096)
def _parse_ip_text(value: str) -> IPAddress | None:
    # Every poll parses its client's address, often the same few (a NAT, a proxy): kept.
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped  # ::ffff:1.2.3.4 is the IPv4 client 1.2.3.4
    return address


def _parse_rule(raw: Any) -> Rule | None:
    if not isinstance(raw, dict):
        return None
    kind, build_id = raw.get("rule"), raw.get("buildId")
    if not isinstance(build_id, str) or not build_id:
        return None
    if kind == "build":
        return Rule("build", build_id)
    if kind == "buildByIp" and isinstance(raw.get("ipList"), list):
        ips = frozenset(ip for ip in map(parse_ip, raw["ipList"]) if ip is not None)
        return Rule("buildByIp", build_id, ips=ips)
    if kind == "buildByPlatform" and isinstance(raw.get("platforms"), list):
        platforms = frozenset(p for p in raw["platforms"] if p in PLATFORMS)
        return Rule("buildByPlatform", build_id, platforms=platforms)
    if kind == "buildByPercentage":
        return _percentage_rule(raw, build_id)
    return None  # appByIp and unknown rules are ignored (docs/feed.md)


def _percentage(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value <= 100 else None


def _schedule_step(raw: Any) -> tuple[float, float] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("at"), str):
        return None
    try:
        at = datetime.fromisoformat(raw["at"])
    except ValueError:
        return None
    percentage = _percentage(raw.get("percentage"))
    if at.tzinfo is None or percentage is None:
        return None
    return at.timestamp(), percentage


def _percentage_rule(raw: dict, build_id: str) -> Rule | None:
    """A rule the feed cannot read fully is dropped (it matches nobody): desired-state
    validation refuses such a file before it reaches production anyway."""
    percentage = _percentage(raw.get("percentage"))
    platforms, schedule = raw.get("platforms"), raw.get("schedule", [])
    if percentage is None or not isinstance(schedule, list):
        return None
    if platforms is not None and not isinstance(platforms, list):
        return None
    steps = [_schedule_step(step) for step in schedule]
    if None in steps:
        return None
    return Rule(
        "buildByPercentage",
        build_id,
        platforms=frozenset(p for p in platforms or () if p in PLATFORMS),
        percentage=percentage,
        schedule=tuple(sorted(steps)),  # type: ignore[arg-type]
        all_platforms=platforms is None,
    )


def _rules_of(releases: dict) -> tuple[Rule, ...]:
    raw_rules = releases.get("releaseRedirections")
    rules = [_parse_rule(raw) for raw in raw_rules] if isinstance(raw_rules, list) else []
    latest = releases.get("latestReleaseBuildId")
    if isinstance(latest, str) and latest:
        rules.append(Rule("build", latest))
    return tuple(rule for rule in rules if rule is not None)


def _index_builds(builds: list) -> tuple[tuple[dict, ...], dict[str, str], frozenset[str]]:
    entries = tuple(b for b in builds if isinstance(b, dict) and isinstance(b.get("id"), str))
    by_version: dict[str, str] = {}
    for entry in entries:
        version = entry.get("version")
        # The first released entry wins, like the original's Array.find.
        if entry.get("isReleased") and isinstance(version, str):
            by_version.setdefault(version, entry["id"])
    return entries, by_version, frozenset(entry["id"] for entry in entries)


def _parse_json(raw: bytes | None, key: str) -> tuple[Any, str | None]:
    if raw is None:
        return None, f"{key}: missing"
    try:
        return control_parse(key, raw), None
    except ControlFileInvalid as exc:
        if exc.not_json:
            return None, f"{key}: invalid JSON"
        return None, f"{key}: not a JSON {KIND_NAMES[KINDS[key]]}"


def metadata_build(
    *,
    builds: list | None,
    releases: dict | None,
    errors: tuple[str, ...] = (),
    stale: tuple[str, ...] = (),
) -> ProductionMetadata:
    """Index parsed `desktop-builds.json` / `desktop-releases.json` contents."""
    entries, by_version, ids = _index_builds(builds or [])
    return ProductionMetadata(
        builds=entries,
        releases=releases or {},
        released_build_by_version=by_version,
        build_ids=ids,
        errors=errors,
        stale=stale,
        rules=_rules_of(releases or {}),
    )


def _metadata_parse(raw_builds: bytes | None, raw_releases: bytes | None) -> ProductionMetadata:
    builds, builds_error = _parse_json(raw_builds, BUILDS_FILE)
    releases, releases_error = _parse_json(raw_releases, RELEASES_FILE)
    errors = tuple(error for error in (builds_error, releases_error) if error)
    return metadata_build(builds=builds, releases=releases, errors=errors)


def metadata_load(*, bucket: buckets.Bucket) -> ProductionMetadata:
    """Read and index both files (a missing or corrupt file is an error, never an exception)."""
    return _metadata_parse(control_read(bucket, BUILDS_FILE), control_read(bucket, RELEASES_FILE))


class _Cache:
    """This process's copy and what it was loaded from."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.snapshot: ProductionMetadata | None = None
        self.validators: tuple = ()
        self.digest = ""
        self.loaded_at = 0.0
        self.checked_at = 0.0
        # Moves each time a different snapshot is loaded: what `cdn.memory` keys its memos on.
        self.generation = 0
        # The last copy of each file that parsed, and the bucket it came from (a reset of the
        # buckets, as tests do, starts from nothing).
        self.last_good: dict[str, Any] = {}
        self.last_good_bucket: buckets.Bucket | None = None


_cache = _Cache()


def metadata_generation() -> int:
    """A number that changes whenever this process loads changed production metadata."""
    return _cache.generation


def _validators(bucket: buckets.Bucket) -> tuple:
    heads = [bucket.head(key) for key in (BUILDS_FILE, RELEASES_FILE)]
    return (*(head.etag if head else None for head in heads), cache.get(STAMP_CACHE_KEY))


def _reload(bucket: buckets.Bucket, *, unless_digest: str | None = None) -> None:
    raws = (control_read(bucket, BUILDS_FILE), control_read(bucket, RELEASES_FILE))
    digest = hashlib.sha256(b"\0".join(raw or b"-" for raw in raws)).hexdigest()
    # Parsing 100,000 builds holds the GIL for ~0.1 s: skip it when the bytes did not change.
    if digest != unless_digest:
        _cache.snapshot = _parse_keeping_last_good(bucket, *raws)
        _cache.digest = digest
        _cache.generation += 1
        # 100,000 builds are millions of long-lived objects; left in the collector's young
        # generations, each full collection walks them all (pauses of ~100 ms on every worker).
        # Parked in the permanent generation, refcounting still frees them after the next load.
        gc.freeze()


def _parse_keeping_last_good(
    bucket: buckets.Bucket, raw_builds: bytes | None, raw_releases: bytes | None
) -> ProductionMetadata:
    """Parse both files; one that is present but does not parse is replaced by its last good
    copy from the same bucket, if any (a missing file is taken as it is: someone removed it)."""
    if _cache.last_good_bucket is not bucket:
        _cache.last_good, _cache.last_good_bucket = {}, bucket
    parsed: dict[str, Any] = {}
    errors: list[str] = []
    stale: list[str] = []
    for key, raw in ((BUILDS_FILE, raw_builds), (RELEASES_FILE, raw_releases)):
        data, error = _parse_json(raw, key)
        if error is None:
            _cache.last_good[key] = data
        elif raw is not None and key in _cache.last_good:
            logger.warning("%s; serving its last good copy", error)
            data, error = _cache.last_good[key], None
            stale.append(key)
        parsed[key] = data
        if error:
            errors.append(error)
    return metadata_build(
        builds=parsed[BUILDS_FILE],
        releases=parsed[RELEASES_FILE],
        errors=tuple(errors),
        stale=tuple(stale),
    )


def _refresh(now: float) -> None:
    bucket = buckets.production()
    try:
        validators = _validators(bucket)
        if _cache.snapshot is None or validators != _cache.validators:
            _reload(bucket)
            _cache.validators, _cache.loaded_at = validators, now
        elif now - _cache.loaded_at >= settings.FEED_METADATA_TTL_SECONDS:
            _reload(bucket, unless_digest=_cache.digest)  # the safety net: compare the bytes
            _cache.loaded_at = now
    except Exception as exc:  # storage or cache down: keep serving the last good copy
        logger.warning("feed metadata refresh failed: %s", exc)
        previous = _cache.snapshot or ProductionMetadata()
        error = f"refresh failed: {type(exc).__name__}: {exc}"[:300]
        _cache.snapshot = ProductionMetadata(**{**previous.__dict__, "errors": (error,)})
        _cache.validators = ()  # retry the full load at the next check
    _cache.checked_at = now


def metadata_get() -> ProductionMetadata:
    """The current metadata: a memory read, plus a cheap validator check once per interval."""
    now = time.monotonic()
    snapshot = _cache.snapshot
    # How stale a process may be after another process promoted (one HEAD per object per check).
    interval = settings.FEED_METADATA_CHECK_SECONDS
    if snapshot is not None and now - _cache.checked_at < interval:
        return snapshot
    # One thread refreshes; the others keep answering from the copy they have.
    if _cache.lock.acquire(blocking=snapshot is None):
        try:
            if _cache.snapshot is None or now - _cache.checked_at >= interval:
                _refresh(now)
        finally:
            _cache.lock.release()
    return _cache.snapshot or ProductionMetadata()


def metadata_invalidate() -> None:
    """Promotion wrote new production JSON: every process reloads on its next check."""
    try:
        cache.set(STAMP_CACHE_KEY, uuid.uuid4().hex, timeout=None)
    except Exception as exc:  # the ETag check still notices the change at its next check
        logger.warning("could not bump the feed metadata stamp: %s", exc)
    with _cache.lock:
        _cache.snapshot = None
        _cache.validators = ()
        _cache.digest = ""
        _cache.checked_at = 0.0
        _cache.generation += 1


def metadata_reset() -> None:
    """Forget everything this process loaded, the last good copies included: a process that
    has just started (unlike `metadata_invalidate`, nothing changes for the other processes)."""
    with _cache.lock:
        _cache.snapshot = None
        _cache.validators = ()
        _cache.digest = ""
        _cache.loaded_at = _cache.checked_at = 0.0
        _cache.last_good, _cache.last_good_bucket = {}, None
        _cache.generation += 1  # the memos keyed on it start empty too


def metadata_health() -> str | None:
    """For /healthz: raise when production's JSON is missing or corrupt; a notice (degraded)
    when a corrupt file is replaced by its last good copy.

    An empty production bucket is a fresh install waiting for its first promotion, not a fault.
    """
    metadata = metadata_get()
    errors = metadata.errors
    if not errors:
        if metadata.stale:
            names = " and ".join(metadata.stale)
            return f"production's {names} does not parse; the feed serves its last good copy"
        return None
    if all(error.endswith(": missing") for error in errors):
        if next(iter(buckets.production().list()), None) is None:
            return
    raise RuntimeError("; ".join(errors))
