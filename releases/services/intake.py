"""Receiving ToDesktop's release webhook (docs/webhooks.md) and retrying failed staging
(docs/audit.md).

`release_receive` checks, in this order, and stores nothing until every check passed:
configuration (503), size (413), signature (401), body (400), app (403). An accepted body is
kept verbatim as a `WebhookDelivery` keyed by its sha256, with the `Build` (one per build id)
and a `ReleaseRequest` (one per body), in one transaction; staging is queued after commit.

Idempotency rests on the database, not on a read-then-write: the unique constraint on
(source, delivery_key) makes the second of two concurrent deliveries of one body fail its insert
once the first commits, and that delivery then answers with the first one's record.

A new body for a known build (a re-release) is a new release request for the same `Build`, and
its staging task is queued like any other. That never starts a second concurrent staging run of
the same files: staging claims the build with a conditional update (received → staging, with a
lease), so a task for a build that another run is staging does not download anything; it is
retried with backoff until that run has finished, then finds the build staged, reuses its files
and opens the review of its own release request. Deciding this here instead (not queueing while
the build is staging) would leave the new request stranded if that run died or failed.
A body for a failed build gives a release request that staging marks failed at once; a release
manager re-queues it with the admin's "Retry" (`staging_retry`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from releases.errors import WebhookRejected
from releases.models import Build, ReleaseRequest, WebhookDelivery
from releases.queue import enqueue_after_commit
from releases.services import lifecycle
from releases.services.audit import audit_record
from releases.services.lifecycle import Event
from releases.signatures import todesktop_signature_valid
from releases.validation import PayloadError, payload_parse
from releases.webhook_http import BodyRefused, body_read, headers_kept

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-ToDesktop-HMAC-SHA256"
# The headers kept with a delivery (an allowlist: anything else may carry a credential). The
# signature stays: it proves, with the key, that ToDesktop sent this very body.
KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent", SIGNATURE_HEADER)


@dataclass(frozen=True)
class Intake:
    release: ReleaseRequest
    created: bool  # True: stored now and staging queued; False: `release` is the earlier record

    @property
    def admin_url(self) -> str:
        path = reverse("admin:releases_releaserequest_change", args=[self.release.pk])
        return settings.PUBLIC_BASE_URL + path


def release_receive(
    *,
    stream: BinaryIO,
    content_length: int | None,
    signature: str | None,
    headers: Mapping[str, str],
    client: str = "",
) -> Intake:
    """Check, store and queue one delivery of the release webhook; raise WebhookRejected.

    `client` (the peer address) is only used in the log line of a rejection."""
    if not (settings.WEBHOOK_HMAC_KEY and settings.TODESKTOP_APP_ID):
        raise _rejected(503, "webhook not configured: set WEBHOOK_HMAC_KEY and TODESKTOP_APP_ID")
    body = _read_bounded(stream=stream, content_length=content_length, client=client)
    _check_signature(body=body, signature=signature, client=client)
    try:
        payload = payload_parse(body=body)
    except PayloadError as exc:
        raise _rejected(400, exc.message, client, exc.errors)
    if payload["appId"] != settings.TODESKTOP_APP_ID:
        raise _rejected(403, f"appId {payload['appId']!r} is not this app", client)
    intake = _store(body=body, payload=payload, headers=headers)
    if intake.created:
        # Queueing ran when the transaction committed and may have failed the release (a
        # broker outage): the answer says what the database says, never a stale "pending".
        intake.release.refresh_from_db(fields=["state", "failure_reason"])
    return intake


def _read_bounded(*, stream: BinaryIO, content_length: int | None, client: str) -> bytes:
    """Read at most the limit (+1 byte to notice more): a declared or actual excess is 413."""
    try:
        return body_read(stream, length=content_length, limit=settings.WEBHOOK_MAX_BODY_BYTES)
    except BodyRefused as exc:
        raise _rejected(exc.status, exc.message, client)


def _check_signature(*, body: bytes, signature: str | None, client: str) -> None:
    if not signature:
        raise _rejected(401, f"missing {SIGNATURE_HEADER} header", client)
    # Non-ASCII text cannot be a hex digest, and hmac.compare_digest refuses it (TypeError).
    if not signature.isascii() or not todesktop_signature_valid(
        key=settings.WEBHOOK_HMAC_KEY, body=body, header=signature
    ):
        raise _rejected(401, f"invalid {SIGNATURE_HEADER} signature", client)


def _rejected(status: int, message: str, client: str = "", errors=None) -> WebhookRejected:
    # Bad input leaves a log line and nothing else (no rows, no task). Values are repr'd or
    # cut short in messages, so a hostile body cannot forge log lines.
    logger.warning(
        "todesktop webhook rejected: %s %s (from %s)",
        status,
        message,
        client or "-",
    )
    return WebhookRejected(status, message, errors)


def _store(*, body: bytes, payload: dict, headers: Mapping[str, str]) -> Intake:
    key = hashlib.sha256(body).hexdigest()
    existing = _delivered(key)
    if existing is not None:
        return Intake(release=existing, created=False)
    try:
        with transaction.atomic():
            return _create(key=key, body=body, payload=payload, headers=headers)
    except IntegrityError:
        # A concurrent delivery of the same body committed first (unique_delivery).
        existing = _delivered(key)
        if existing is None:
            raise
        logger.info("concurrent delivery of release %s: answered as a duplicate", existing.pk)
        return Intake(release=existing, created=False)


def _delivered(key: str) -> ReleaseRequest | None:
    return (
        ReleaseRequest.objects.select_related("build")
        .filter(delivery__source=WebhookDelivery.Source.TODESKTOP, delivery__delivery_key=key)
        .first()
    )


def _create(*, key: str, body: bytes, payload: dict, headers: Mapping[str, str]) -> Intake:
    delivery = WebhookDelivery.objects.create(
        source=WebhookDelivery.Source.TODESKTOP,
        delivery_key=key,
        event="release",
        headers=headers_kept(headers, KEPT_HEADERS),
        body=body,
    )
    build, created = Build.objects.get_or_create(
        build_id=payload["buildId"], defaults={"app_id": payload["appId"]}
    )
    release = ReleaseRequest.objects.create(
        build=build, delivery=delivery, payload=payload, release_info=payload.get("releaseInfo")
    )
    audit_record(
        kind="webhook.received",
        message=_received_message(build=build, created=created),
        release=release,
        data={
            "delivery": delivery.pk,
            "sha256": key,
            "appVersion": payload.get("appVersion"),
            "new_build": created,
        },
    )
    _enqueue_staging(release.pk)
    return Intake(release=release, created=True)


def _received_message(*, build: Build, created: bool) -> str:
    what = f"release webhook for build {build.build_id} accepted; staging queued"
    if created:
        return what
    return f"{what} (a re-release: the build is known, its staged files are reused)"


def _enqueue_staging(release_id: int) -> None:
    # The delivery is stored and answered; a broker outage must not turn it into a 500 that
    # ToDesktop would retry as a duplicate. The release is marked failed, visibly, so that a
    # release manager retries it from the admin once the broker is back.
    enqueue_after_commit(
        "releases.tasks.stage_build",
        release_id,
        on_failure=partial(_mark_unqueued, release_id=release_id),
    )


def _mark_unqueued(exc: Exception, *, release_id: int) -> None:
    reason = f"could not queue staging: {exc}"[:500]
    release = ReleaseRequest.objects.select_related("build").get(pk=release_id)
    # The build fails only when nobody is staging it (another release's run may be).
    lifecycle.move(
        release=release,
        step="fail_staging",
        build_step="give_up",
        reason=reason,
        event=Event(kind="staging.queue_failed", message=reason),
    )


def staging_retry(*, releases: Iterable[ReleaseRequest], actor: str) -> tuple[int, list[str]]:
    """Queue staging again for each release whose build or whose own request failed.
    Returns how many were queued and why the others were not (the admin's "Retry")."""
    queued, skipped = 0, []
    for release in releases:
        if _retry_one(release=release, actor=actor):
            queued += 1
        else:
            skipped.append(f"#{release.pk} (build {release.build.status}, {release.state})")
    return queued, skipped


def _retry_one(*, release: ReleaseRequest, actor: str) -> bool:
    """The claims are conditional updates (failed → received / pending), so two managers
    clicking at once queue one run. A retried request of an already staged build downloads
    nothing: staging reuses the files and opens its review."""
    with transaction.atomic():
        moved = lifecycle.move(
            release=release,
            step="retry",
            build_step="retry",
            independent=True,  # either may have failed: the build, or only its request
            event=Event(
                kind="staging.retry",
                message=f"staging of build {release.build.build_id} queued again",
                actor=actor,
            ),
        )
        if not moved:
            return False
        _enqueue_staging(release.pk)
    return True
