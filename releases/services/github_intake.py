"""Receiving GitHub's webhook (docs/webhooks.md): every check, then the mirror service.

`github_webhook_receive` checks, in this order, and parses nothing until the signature is
verified on the raw bytes, so an unsigned request cannot make us parse (or store) anything:
configuration (503), size (413), signature (401), event headers (400), body (400). A verified
delivery goes to `releases.services.mirror`, which stores it once and applies it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import BinaryIO

from django.conf import settings

from releases.errors import WebhookRejected
from releases.github_payloads import GitHubPayloadError, github_payload_check
from releases.services.mirror import Outcome, github_delivery_receive
from releases.signatures import github_signature_valid
from releases.validation import JsonTooDeep, json_load_bounded
from releases.webhook_http import body_read

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_DELIVERY_ID = 128


def github_webhook_receive(
    *, stream: BinaryIO, content_length: int | None, headers: Mapping[str, str]
) -> Outcome:
    """Check one delivery of the GitHub webhook and hand it to the mirror; raise
    WebhookRejected (or `BodyRefused` for a body over the size limit)."""
    secret = settings.GITHUB_WEBHOOK_SECRET
    if not secret:
        raise WebhookRejected(
            503, "GITHUB_WEBHOOK_SECRET is not set; no GitHub delivery is accepted"
        )
    body = body_read(stream, length=content_length, limit=settings.WEBHOOK_MAX_BODY_BYTES)
    signature = headers.get(SIGNATURE_HEADER)
    if not github_signature_valid(secret=secret, body=body, header=signature):
        logger.warning("github webhook with a missing or wrong signature rejected")
        reason = "missing signature" if not signature else "invalid signature"
        raise WebhookRejected(401, f"{reason} ({SIGNATURE_HEADER})")
    event = headers.get("X-GitHub-Event", "").strip()
    delivery_id = headers.get("X-GitHub-Delivery", "").strip()
    if not event or not delivery_id or len(delivery_id) > MAX_DELIVERY_ID:
        raise WebhookRejected(400, "missing X-GitHub-Event or X-GitHub-Delivery header")
    payload = _payload(body)
    try:
        github_payload_check(event=event, payload=payload)
    except GitHubPayloadError as exc:
        logger.warning("github %s delivery %r rejected: %s", event, delivery_id, exc)
        raise WebhookRejected(400, str(exc)) from exc
    return github_delivery_receive(
        event=event, delivery_id=delivery_id, body=body, payload=payload, headers=headers
    )


def _payload(body: bytes) -> dict:
    try:
        payload = json_load_bounded(body)
    except JsonTooDeep as exc:
        raise WebhookRejected(400, f"body is not JSON ({exc})") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        message = "body is not JSON (set the webhook's content type to application/json)"
        raise WebhookRejected(400, message) from exc
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "body is not a JSON object")
    return payload
