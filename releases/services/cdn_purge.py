"""CDN purge after every change to production (README: CDN in front of the feed).

A CDN may keep a manifest for as long as `FEED_MANIFEST_CACHE_CONTROL` allows, so after a
promotion, rollback, halt or reconcile the URLs whose answer changed are purged at once. Which
ones, for a change to production:
- every manifest copied or written (`*-build-<id>.yml/json`, `desktop-*.json`);
- when `desktop-releases.json` changed: the channel manifests (`latest-mac.yml`,
  `td-latest.json`, …) of every build its rules named before or name now, and the same for a
  build whose own manifest was re-copied while the rules name it (a reconcile repair);
- when `desktop-builds.json` changed: the versioned manifests (`latest-mac-1.2.0.yml`) of every
  build whose entry was added, removed or changed.
Each name is purged under every base of `CDN_PUBLIC_BASE_URLS`. Download links answer
`no-store` and files named with a build id never change, so neither needs a purge.

Any process queues a purge (`cdn_purge_queue`); the promotion worker, which holds the CDN's
credentials, records it (`CdnPurge`) and sends it with retries. Outcomes go to the audit trail
(`cdn.purged`, `cdn.purge_retrying`, `cdn.purge_failed`) and a failure shows in /healthz as
degraded: the feed still works, only a CDN may serve the old answer until it expires.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from releases.control_files import (
    BUILDS_FILE,
    RELEASES_FILE,
    control_parse_or_empty,
    control_read,
    rules_build_ids,
)
from releases.errors import TransientError
from releases.integrations.buckets import Bucket
from releases.integrations.cloudflare import cloudflare_purge
from releases.integrations.cloudfront import cloudfront_invalidate
from releases.integrations.outbound import DeliveryError
from releases.integrations.purge_http import http_purge
from releases.models import BuildFile, CdnPurge, DeliveryStatus
from releases.queue import enqueue_after_commit
from releases.services.audit import audit_record

logger = logging.getLogger(__name__)

# What the feed serves as a manifest (with FEED_MANIFEST_CACHE_CONTROL).
MANIFEST_SUFFIXES = (".yml", ".json")
# The feed resolves `<channel>-<x.y.z>.<ext>` only for a plain three-part version.
PLAIN_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
BUILD_MANIFEST = re.compile(r"^(?P<stem>.+)-build-(?P<id>[A-Za-z0-9_-]+)\.(?P<ext>yml|json)$")
# Channel names of a build that production has but this install never staged (ToDesktop's).
STANDARD_CHANNELS = (
    "latest.yml",
    "latest-mac.yml",
    "latest-linux.yml",
    "td-latest.json",
    "td-latest-mac.json",
    "td-latest-linux.json",
)


@dataclass(frozen=True)
class ControlWrite:
    """One production control file as it was and as it is now (None: it did not exist)."""

    key: str
    before: bytes | None
    after: bytes


def _referenced(raw: bytes | None) -> set[str]:
    """Build ids a `desktop-releases.json` points clients at."""
    return rules_build_ids(control_parse_or_empty(RELEASES_FILE, raw))


def _released_versions(raw: bytes | None) -> dict[str, tuple]:
    """build id → (version, isReleased), from a `desktop-builds.json`."""
    entries = control_parse_or_empty(BUILDS_FILE, raw)
    return {
        e["id"]: (e.get("version"), e.get("isReleased"))
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("id"), str)
    }


def _channels(build_ids: Iterable[str]) -> dict[str, set[str]]:
    """build id → its channel names (`latest-mac-build-<id>.yml` → `latest-mac.yml`)."""
    build_ids = set(build_ids)
    found: dict[str, set[str]] = {build_id: set() for build_id in build_ids}
    rows = BuildFile.objects.filter(build__build_id__in=build_ids)
    for build_id, name in rows.values_list("build__build_id", "name"):
        match = BUILD_MANIFEST.match(name)
        if match and match["id"] == build_id:
            found[build_id].add(f"{match['stem']}.{match['ext']}")
    return {bid: names or set(STANDARD_CHANNELS) for bid, names in found.items()}


def _versioned(channel: str, version) -> str | None:
    if not isinstance(version, str) or not PLAIN_VERSION.match(version):
        return None
    stem, ext = channel.rsplit(".", 1)
    return f"{stem}-{version}.{ext}"


def purge_names(
    *, copied: Iterable[str], writes: Iterable[ControlWrite], rules_now: bytes | None
) -> list[str]:
    """The production names whose feed answer changed (see the module's docstring)."""
    copied = [key for key in copied if key.endswith(MANIFEST_SUFFIXES)]
    changed = {w.key: w for w in writes if w.before != w.after}
    names = set(copied) | set(changed)
    repaired = {m["id"] for m in map(BUILD_MANIFEST.match, copied) if m}
    point = _referenced(rules_now) & repaired
    if RELEASES_FILE in changed:
        point |= _referenced(changed[RELEASES_FILE].before) | _referenced(rules_now)
    versions: dict[str, set] = {}
    if BUILDS_FILE in changed:
        before = _released_versions(changed[BUILDS_FILE].before)
        after = _released_versions(changed[BUILDS_FILE].after)
        for build_id in set(before) | set(after):
            if before.get(build_id) != after.get(build_id):
                pairs = (before.get(build_id), after.get(build_id))
                versions[build_id] = {pair[0] for pair in pairs if pair and pair[1]}
    channels = _channels(point | set(versions))
    for build_id in point:
        names |= channels[build_id]
    for build_id, build_versions in versions.items():
        for channel in channels[build_id]:
            names |= {_versioned(channel, v) for v in build_versions} - {None}
    return sorted(names)


def purge_urls(names: Iterable[str]) -> dict[str, list[str]]:
    """Public base → the URLs of `names` under it."""
    quoted = [quote(name) for name in sorted(set(names))]
    return {base: [f"{base}/{name}" for name in quoted] for base in settings.CDN_PUBLIC_BASE_URLS}


def cdn_purge_queue(*, names: Iterable[str], reason: str, actor: str = "") -> None:
    """Queue a purge of `names` (production keys) after commit; a broker failure is logged."""
    names = sorted(set(names))
    if not names:
        return
    enqueue_after_commit("releases.tasks.cdn_purge", names, reason, actor)


def cdn_purge_after_promotion(*, result, production: Bucket, reason: str, actor: str) -> None:
    """Purge what a promotion changed. Never raises: production has changed already, and a
    purge that cannot be queued must not turn a successful promotion into a failed one."""
    if settings.CDN_PURGE_BACKEND == "off" or not (result.copied or result.written):
        return
    try:
        writes = [
            ControlWrite(w.key, w.previous, w.data)
            for w in result.plan.writes
            if w.key in result.written
        ]
        rules_now = next((w.after for w in writes if w.key == RELEASES_FILE), None)
        if rules_now is None:
            rules_now = control_read(production, RELEASES_FILE)
        names = purge_names(copied=result.copied, writes=writes, rules_now=rules_now)
        cdn_purge_queue(names=names, reason=reason, actor=actor)
    except Exception as exc:  # see the docstring: whatever went wrong, the promotion stands
        logger.exception("cannot queue the CDN purge after %s", reason)
        audit_record(kind="cdn.purge_failed", message=f"cannot queue the CDN purge: {exc}")


def cdn_purge_open(*, names: list[str], reason: str, actor: str) -> CdnPurge | None:
    """Record the purge of `names` with this process's backend (None when purging is off)."""
    if settings.CDN_PURGE_BACKEND == "off" or not names:
        return None
    return CdnPurge.objects.create(
        backend=settings.CDN_PURGE_BACKEND,
        urls=purge_urls(names),
        reason=reason[:500],
        actor=actor[:255],
    )


def _cloudflare(purge: CdnPurge) -> str:
    calls = sum(cloudflare_purge(urls) for urls in purge.urls.values())
    return f"{calls} Cloudflare API call(s)"


def _cloudfront(purge: CdnPurge) -> str:
    paths = sorted({urlsplit(url).path for urls in purge.urls.values() for url in urls})
    invalidation = cloudfront_invalidate(paths=paths, reference=str(purge.reference))
    return f"CloudFront invalidation {invalidation} of {len(paths)} path(s)"


def _http(purge: CdnPurge) -> str:
    return f"{http_purge(list(purge.urls.values()))} purge request(s)"


BACKENDS = {"cloudflare": _cloudflare, "cloudfront": _cloudfront, "http": _http}


def _count(purge: CdnPurge) -> int:
    return sum(len(urls) for urls in purge.urls.values())


def _finish(purge: CdnPurge, status: str, error: str = "") -> None:
    now = timezone.now()
    CdnPurge.objects.filter(pk=purge.pk).update(
        status=status, last_error=error, finished_at=now, updated_at=now
    )


def cdn_purge_attempt(*, purge_id: int) -> None:
    """One attempt; a transient failure raises TransientError for the task to retry."""
    purge = CdnPurge.objects.filter(pk=purge_id, status=DeliveryStatus.PENDING).first()
    if purge is None:
        return
    claimed = CdnPurge.objects.filter(pk=purge.pk, attempts=purge.attempts).update(
        attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    if not claimed:
        return  # a duplicate of this attempt's task
    attempt = purge.attempts + 1
    try:
        detail = BACKENDS[purge.backend](purge)
    except DeliveryError as exc:
        _failed(purge, exc, attempt=attempt)
        return
    _finish(purge, DeliveryStatus.DELIVERED)
    audit_record(
        kind="cdn.purged",
        message=f"purged {_count(purge)} URL(s) through {purge.backend} ({detail}, attempt "
        f"{attempt}) after {purge.reason}",
        actor=purge.actor,
        data={"purge": purge.pk, "backend": purge.backend, "urls": purge.urls},
    )


def _failed(purge: CdnPurge, exc: DeliveryError, *, attempt: int) -> None:
    message = f"CDN purge #{purge.pk} ({purge.backend}) attempt {attempt} failed: {exc}"
    data = {"purge": purge.pk, "backend": purge.backend, "attempt": attempt}
    if exc.transient:
        CdnPurge.objects.filter(pk=purge.pk).update(last_error=str(exc))
        audit_record(kind="cdn.purge_retrying", message=f"{message}; will retry", data=data)
        raise TransientError(str(exc)) from exc
    _finish(purge, DeliveryStatus.FAILED, str(exc))
    audit_record(kind="cdn.purge_failed", message=message, data=data)


def cdn_purge_give_up(*, purge_id: int, reason: str) -> None:
    """The retries ran out: the purge failed, in its row, the trail and /healthz."""
    purge = CdnPurge.objects.filter(pk=purge_id, status=DeliveryStatus.PENDING).first()
    if purge is None:
        return
    _finish(purge, DeliveryStatus.FAILED, f"gave up after retries: {reason}"[:2000])
    audit_record(
        kind="cdn.purge_failed",
        message=f"CDN purge #{purge.pk} ({purge.backend}) gave up after retries: {reason}",
        data={"purge": purge.pk, "backend": purge.backend, "attempts": purge.attempts},
    )


def cdn_purge_again(*, purges: Iterable[CdnPurge], actor: str) -> int:
    """Send failed purges again, as new purges of the same URLs (an admin action)."""
    again = 0
    for purge in purges:
        if purge.status != DeliveryStatus.FAILED or settings.CDN_PURGE_BACKEND == "off":
            continue
        retry = CdnPurge.objects.create(
            backend=settings.CDN_PURGE_BACKEND,
            urls=purge.urls,
            reason=f"purge #{purge.pk} again",
            actor=actor[:255],
        )
        enqueue_after_commit("releases.tasks.cdn_purge_send", retry.pk)
        again += 1
    return again


def cdn_purge_health() -> str:
    """For /healthz: "" unless the latest purge failed or is being retried (the error is in the
    trail and the admin: /healthz answers anyone)."""
    if settings.CDN_PURGE_BACKEND == "off":
        return ""
    latest = CdnPurge.objects.order_by("-pk").first()
    if latest is None or latest.status == DeliveryStatus.DELIVERED or not latest.last_error:
        return ""
    state = "failed" if latest.status == DeliveryStatus.FAILED else "is being retried"
    return f"the latest CDN purge (#{latest.pk}) {state}; a CDN may serve old manifests"
