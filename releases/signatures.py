"""HMAC checks for both webhooks, on the raw body, in constant time (docs/webhooks.md)."""

from __future__ import annotations

import hashlib
import hmac


def hmac_sha256_hex(*, key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    # Compare bytes: compare_digest refuses non-ASCII str, and a header is client input.
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


def todesktop_signature_valid(*, key: str, body: bytes, header: str | None) -> bool:
    """`X-ToDesktop-HMAC-SHA256` = lowercase hex HMAC-SHA256 of the raw body (docs/webhooks.md)."""
    if not key or not header:
        return False
    expected = hmac_sha256_hex(key=key, body=body)
    return _same(expected, header.strip().lower())


def github_signature_valid(*, secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256` = `sha256=` + hex HMAC-SHA256 of the raw body (GitHub docs)."""
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac_sha256_hex(key=secret, body=body)
    return _same(expected, header.strip())
