"""The generic outgoing webhook: a JSON body signed with HMAC-SHA256, like GitHub's and Stripe's.

Headers: `X-Selfhosted-Signature-256: sha256=<hex HMAC of the raw body>`, `X-Selfhosted-Delivery`
(the same id on every retry of one notification) and `X-Selfhosted-Timestamp` (Unix seconds of
this attempt). The body repeats both as `delivery` and `timestamp`, so the signature covers
them: a receiver that checks the signature, rejects old timestamps and remembers delivery ids
cannot be fed a replay (README: Notifications).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from releases.integrations import outbound


def webhook_signature(body: bytes, *, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(payload: dict[str, Any], *, delivery: str, timestamp: int) -> bytes:
    return json.dumps(
        {**payload, "delivery": delivery, "timestamp": timestamp},
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def webhook_post(*, url: str, secret: str, payload: dict[str, Any], delivery: str) -> int:
    """Sign and post `payload`; returns the HTTP status."""
    timestamp = int(time.time())
    body = webhook_body(payload, delivery=delivery, timestamp=timestamp)
    headers = {
        "Content-Type": "application/json",
        "X-Selfhosted-Event": str(payload.get("event", "")),
        "X-Selfhosted-Delivery": delivery,
        "X-Selfhosted-Timestamp": str(timestamp),
        "X-Selfhosted-Signature-256": webhook_signature(body, secret=secret),
    }
    response = outbound.send("POST", url, body=body, headers=headers, secrets=[secret])
    return response.status_code
