"""What both webhook receivers share at the HTTP level (README, "Webhooks").

- **The raw body, bounded.** At most `WEBHOOK_MAX_BODY_BYTES` is read; a larger declared
  `Content-Length` is refused (413) before anything is read.
- **Chunked bodies** (`Transfer-Encoding: chunked`, no `Content-Length`) are read to their
  real end: gunicorn decodes the chunks and marks the stream `wsgi.input_terminated` (the
  WSGI convention for "read until EOF"), whereas Django's `request.body` would read nothing
  without a length, and the signature would be checked over `b""`. A server that cannot say
  where such a body ends (Django's runserver) gets a clear 411 Length Required instead.
- **A refusal the client actually reads.** A client that is still sending a body when the
  server answers and closes gets a TCP reset, and most clients then report the reset, not
  the 413. So what is left of a refused body is read and dropped first, up to
  `DRAIN_MAX_BYTES` and `DRAIN_SECONDS` (RFC 9112 §9.6); only a body declared larger than that
  is answered without being drained.
- **Headers kept with a delivery**: an allowlist, never a denylist (a proxy or a sender may add
  any credential-bearing header: `Cf-Access-Jwt-Assertion`, `X-Auth`, …).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import BinaryIO

from django.http import HttpRequest, JsonResponse

from releases.errors import WebhookRejected

# A refused body is drained up to this much (a bit over 16 webhook limits) and this long:
# enough for any webhook sender that overshoots, too little to be a way to tie up a thread.
DRAIN_MAX_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 10.0
READ_SIZE = 64 * 1024


class BodyRefused(Exception):
    """The body cannot be accepted: answer `status` with `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def body_source(request: HttpRequest) -> tuple[BinaryIO, int | None]:
    """Where to read the raw body from, and its declared length (None: read to the end)."""
    declared = request.META.get("CONTENT_LENGTH")
    if declared not in (None, ""):
        if not str(declared).isdigit():
            raise BodyRefused(400, "invalid Content-Length")
        return request, int(declared)
    if request.META.get("wsgi.input_terminated"):
        return request.META["wsgi.input"], None  # the server delimits it (chunked, or empty)
    if request.META.get("HTTP_TRANSFER_ENCODING"):
        raise BodyRefused(411, "a body without Content-Length is not supported by this server")
    return request, 0  # neither header: no body (RFC 9112 §6.3)


def webhook_answer(
    request: HttpRequest, receive: Callable[[BinaryIO, int | None], JsonResponse]
) -> JsonResponse:
    """`receive(stream, declared length)`'s answer; a refusal (WebhookRejected, BodyRefused) is
    answered as JSON once what is left of the body is drained, so the client reads it."""
    stream, length = request, None
    try:
        stream, length = body_source(request)
        return receive(stream, length)
    except (WebhookRejected, BodyRefused) as exc:
        body_discard(stream, length=length)  # so the client reads this answer, not a reset
        answer: dict = {"error": exc.message}
        if getattr(exc, "errors", None):
            answer["errors"] = exc.errors
        return JsonResponse(answer, status=exc.status)


def body_read(stream: BinaryIO, *, length: int | None, limit: int) -> bytes:
    """The whole body, or BodyRefused(413) when it is (or says it is) larger than `limit`."""
    too_large = f"body larger than {limit} bytes"
    if length is not None and length > limit:
        raise BodyRefused(413, too_large)
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise BodyRefused(413, too_large)
    return body


def body_discard(stream: BinaryIO, *, length: int | None) -> None:
    """Read and drop what is left of a refused body (bounded), so the client reads the answer.

    A body already read to its end costs one empty read."""
    if length is not None and length > DRAIN_MAX_BYTES:
        return  # not worth reading: the server closes the connection after the answer
    deadline = time.monotonic() + DRAIN_SECONDS
    drained = 0
    try:
        while drained < DRAIN_MAX_BYTES and time.monotonic() < deadline:
            chunk = stream.read(READ_SIZE)
            if not chunk:
                return
            drained += len(chunk)
    except OSError:
        return  # the client went away: nothing left to answer


def headers_kept(headers: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """Only the headers named in `names` (matched without regard to case), under those
    names; values holding a NUL (which PostgreSQL cannot store) are dropped."""
    given = {name.lower(): value for name, value in headers.items()}
    return {
        name: given[name.lower()]
        for name in names
        if name.lower() in given and "\x00" not in given[name.lower()]
    }
