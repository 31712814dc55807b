"""Outbound HTTP for notifications and CDN purges: timeouts, redirects, retryable failures.

One place decides what a receiver's answer means, so every channel and purge backend retries
the same failures: no connection, a timeout, 5xx, 408/409/425/429. Any other 4xx says the
request or the configuration is wrong, and repeating it would not help. Redirects are never
followed: a signed body or a token must go only where the operator pointed it.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import requests
from django.conf import settings

USER_AGENT = "selfhosted-desktop-releases"
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
ERROR_BODY_CHARS = 300


class DeliveryError(Exception):
    """The receiver did not take it. `transient`: a later attempt may succeed."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


def redact(text: str, *, url: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the URL's path, query and credentials, nor any of `secrets`.

    Incoming-webhook URLs are credentials (Slack's path is its token) and requests quotes the
    path in its errors; what we store is shown in the admin and logged.
    """
    parts = urlsplit(url)
    hidden = [url, parts.query, parts.password or "", parts.username or "", *secrets]
    if parts.path not in ("", "/"):
        hidden.append(parts.path)
    for value in sorted((v for v in hidden if v), key=len, reverse=True):
        text = text.replace(value, "…")
    return text


def send(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> requests.Response:
    """Send one request; a 2xx answer is returned, anything else raises DeliveryError."""
    secrets = tuple(secrets)
    headers = {"User-Agent": USER_AGENT, **(headers or {})}
    try:
        response = requests.request(
            method,
            url,
            data=body,
            headers=headers,
            timeout=settings.HTTP_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.Timeout:
        raise DeliveryError(f"no answer within {settings.HTTP_TIMEOUT_SECONDS:g} s", transient=True)
    except requests.RequestException as exc:
        reason = redact(f"{type(exc).__name__}: {exc}", url=url, secrets=secrets)
        raise DeliveryError(f"cannot reach the receiver: {reason}", transient=True)
    status = response.status_code
    if 200 <= status < 300:
        return response
    detail = redact(response.text[:ERROR_BODY_CHARS].strip(), url=url, secrets=secrets)
    if 300 <= status < 400:
        raise DeliveryError(
            f"HTTP {status}: redirects are not followed", transient=False, status=status
        )
    transient = status >= 500 or status in RETRYABLE_STATUSES
    raise DeliveryError(f"HTTP {status}: {detail}".rstrip(": "), transient=transient, status=status)
