"""The ToDesktop download host: the ONLY code that talks to ToDesktop (docs/configuration.md,
docs/staging.md).

Every request goes to `TODESKTOP_DOWNLOAD_BASE_URL/<appId>/<fileName>`; a URL found in a
manifest contributes only its URL-decoded last path segment (`file_name_from_url`), so a
manifest can never make us contact another host (no SSRF) or write outside `<buildId>/`.

Transient failures (5xx, 408, 429, connection errors, timeouts) are retried with exponential
backoff and jitter by tenacity; a body that drops half-way is resumed with a `Range` request
from the last byte received. After the retries, `OriginUnavailable` is raised: the caller
turns it into a task retry.

Redirects are followed by hand, hop by hop, only where `releases.integrations.egress` allows (the
base URL's origin, `TODESKTOP_REDIRECT_HOSTS`), at most `MAX_REDIRECTS` times; a refused redirect is
a permanent `RedirectRefused` naming the target. Every body is capped while it streams (`limit`),
and a declared `Content-Length` over the cap is refused before the body is read.
URLs in messages and logs go through `url_redact`: the base URL may carry credentials.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote, unquote, urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from releases.integrations import egress
from selfhosted.redaction import url_redact

logger = logging.getLogger(__name__)

# Small enough that a dropped body loses little (urllib3 discards a partly read chunk), large
# enough that per-chunk overhead stays negligible at hundreds of MB/s.
CHUNK_SIZE = 256 * 1024
MAX_NAME_LENGTH = 240  # BuildFile.name holds 255; leave room for ".blockmap"
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5  # a CDN needs one or two; requests' default of 30 only helps loops
# A body cut short: urllib3 enforces Content-Length and requests reports it as one of these.
READ_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class OriginError(Exception):
    """ToDesktop answered something we cannot use (a permanent failure)."""


class OriginUnavailable(OriginError):
    """ToDesktop kept failing after our retries (transient: retry the task later)."""


class RedirectRefused(OriginError):
    """A redirect to somewhere `releases.integrations.egress` does not allow (never retried)."""


class TooLarge(OriginError):
    """A body over its cap, declared or streamed (never retried)."""


class NotFound(OriginError):
    """404: the file does not exist (normal for a platform not built or a missing blockmap)."""


class UnsafeFileName(ValueError):
    """A decoded file name that could escape `<buildId>/` (docs/bucket-layout.md)."""


class _Retryable(Exception):
    """Internal: one attempt failed in a way worth retrying."""


def file_name_check(name: str) -> str:
    """Reject names with `/`, `\\`, `..`, NUL or other control characters
    (docs/bucket-layout.md)."""
    if not name or name in (".", ".."):
        raise UnsafeFileName(f"unsafe file name {name!r}: empty or a dot segment")
    if "/" in name or "\\" in name:
        raise UnsafeFileName(f"unsafe file name {name!r}: contains a path separator")
    if ".." in name.split("/"):
        raise UnsafeFileName(f"unsafe file name {name!r}: contains '..'")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise UnsafeFileName(f"unsafe file name {name!r}: contains a control character")
    if len(name) > MAX_NAME_LENGTH:
        raise UnsafeFileName(f"unsafe file name {name[:40]!r}…: longer than {MAX_NAME_LENGTH}")
    return name


def file_name_from_url(url: str) -> str:
    """The URL-decoded last path segment of `url`, checked (only this part of a URL is used)."""
    if not isinstance(url, str) or not url:
        raise UnsafeFileName(f"unsafe file name: url {url!r} is not a non-empty string")
    path = urlsplit(url).path if "://" in url else url.split("?", 1)[0].split("#", 1)[0]
    return file_name_check(unquote(path.rsplit("/", 1)[-1]))


def file_url(*, app_id: str, name: str) -> str:
    """Where `name` is downloaded from: always the configured host, never a manifest's."""
    file_name_check(name)
    base = settings.TODESKTOP_DOWNLOAD_BASE_URL.rstrip("/")
    return f"{base}/{quote(app_id, safe='')}/{quote(name, safe='')}"


_local = threading.local()


def _session() -> requests.Session:
    # One session per thread: requests.Session is not guaranteed thread-safe.
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.headers["User-Agent"] = "selfhosted-desktop-releases/staging"
        adapter: HTTPAdapter = egress.CheckedAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session


def shown(url: str) -> str:
    """`url` fit for a message, a log line or the audit trail (no credentials)."""
    return url_redact(url)


def _retrying() -> Retrying:
    return Retrying(
        retry=retry_if_exception_type(_Retryable),
        stop=stop_after_attempt(settings.HTTP_MAX_RETRIES + 1),
        wait=wait_exponential_jitter(
            multiplier=settings.HTTP_RETRY_BACKOFF_SECONDS,
            jitter=settings.HTTP_RETRY_BACKOFF_SECONDS,
            max=max(settings.HTTP_RETRY_BACKOFF_SECONDS, 30.0),
        ),
        reraise=True,
    )


def _get(url: str, *, offset: int = 0, limit: int | None = None) -> requests.Response:
    """One streamed GET, following allowed redirects; raises _Retryable, NotFound, OriginError."""
    headers = {"Accept-Encoding": "identity"}  # hash the bytes ToDesktop stores, not a gzip
    if offset:
        headers["Range"] = f"bytes={offset}-"
    target = url
    for _ in range(MAX_REDIRECTS + 1):
        response = _request(url, target, headers)
        if response.status_code not in REDIRECT_STATUSES:
            return _answer(url, response, limit=limit)
        location = response.headers.get("Location")
        response.close()
        try:
            target = egress.redirect_target(current=target, location=location)
        except egress.Refused as exc:
            raise RedirectRefused(f"{shown(url)}: {exc}") from None
    raise RedirectRefused(f"{shown(url)}: more than {MAX_REDIRECTS} redirects")


def _request(url: str, target: str, headers: dict[str, str]) -> requests.Response:
    timeout = settings.HTTP_TIMEOUT_SECONDS
    session = _session()
    try:
        return session.get(
            target, headers=headers, stream=True, timeout=timeout, allow_redirects=False
        )
    except egress.Refused as exc:
        raise RedirectRefused(f"{shown(url)}: redirect to {shown(target)} refused: {exc}")
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _Retryable(f"{shown(target)}: {exc.__class__.__name__}: {exc}") from exc
    except requests.RequestException as exc:
        # A URL no request can be made to (no host, bad port, unknown scheme): retrying cannot
        # help. Only the class is named: requests' message repeats the URL unredacted.
        raise OriginError(
            f"{shown(target)}: cannot be requested ({exc.__class__.__name__})"
        ) from exc


def _answer(url: str, response: requests.Response, *, limit: int | None) -> requests.Response:
    status = response.status_code
    if status in (200, 206):
        length = response.headers.get("Content-Length", "")
        if limit is not None and length.isdigit() and int(length) > limit:
            response.close()
            raise TooLarge(f"{shown(url)}: declares {length} bytes, over the cap of {limit}")
        return response
    response.close()
    if status == 404:
        raise NotFound(f"{shown(url)}: 404 not found")
    if status in TRANSIENT_STATUSES:
        raise _Retryable(f"{shown(url)}: HTTP {status}")
    raise OriginError(f"{shown(url)}: unexpected HTTP {status}")


def _with_retries(action, url: str):
    try:
        for attempt in _retrying():
            with attempt:
                return action()
    except _Retryable as exc:
        raise OriginUnavailable(f"gave up after {settings.HTTP_MAX_RETRIES} retries: {exc}")


def fetch_small(*, app_id: str, name: str) -> bytes | None:
    """A whole small file (a manifest, at most MAX_MANIFEST_BYTES), or None on 404; other
    failures retried then raised."""
    url = file_url(app_id=app_id, name=name)
    limit = settings.MAX_MANIFEST_BYTES

    def attempt() -> bytes:
        response = _get(url, limit=limit)
        with response:
            body = bytearray()
            try:
                for chunk in response.iter_content(64 * 1024):
                    body += chunk
                    if len(body) > limit:
                        raise TooLarge(
                            f"{shown(url)}: larger than MAX_MANIFEST_BYTES ({limit} bytes)"
                        )
            except READ_ERRORS as exc:
                raise _Retryable(f"{shown(url)}: body interrupted ({exc.__class__.__name__})")
            return bytes(body)

    try:
        return _with_retries(attempt, url)
    except NotFound:
        return None


class Download:
    """A streamed download that resumes with `Range` after a dropped connection.

    Opened eagerly, so a 404 or a dead origin is known before anything is written.
    """

    def __init__(self, *, app_id: str, name: str, limit: int | None = None) -> None:
        self.name = name
        self.url = file_url(app_id=app_id, name=name)
        self.limit = limit  # a declared Content-Length over this is refused (TooLarge)
        self.offset = 0
        self.drops = 0
        self.response = _with_retries(lambda: _get(self.url, limit=limit), self.url)
        length = self.response.headers.get("Content-Length")
        self.size = int(length) if length and length.isdigit() else None

    def chunks(self) -> Iterator[bytes]:
        try:
            while True:
                try:
                    yield from self._body()
                    if self.size is None or self.offset >= self.size:
                        return
                    raise _Retryable(f"body ended at {self.offset} of {self.size} bytes")
                except (_Retryable, *READ_ERRORS) as exc:
                    self._resume(exc)
        finally:
            self.response.close()

    def _body(self) -> Iterator[bytes]:
        for chunk in self.response.iter_content(CHUNK_SIZE):
            self.offset += len(chunk)
            yield chunk

    def _resume(self, exc: Exception) -> None:
        self.response.close()
        self.drops += 1
        if self.drops > settings.HTTP_MAX_RETRIES:
            raise OriginUnavailable(f"{shown(self.url)}: body kept dropping ({exc})")
        logger.warning("%s: %s; resuming at byte %s", shown(self.url), exc, self.offset)
        time.sleep(min(settings.HTTP_RETRY_BACKOFF_SECONDS * 2 ** (self.drops - 1), 30.0))
        response = _with_retries(
            lambda: _get(self.url, offset=self.offset, limit=self.limit), self.url
        )
        if response.status_code == 200 and not self.offset:
            self.response = response
            return
        if response.status_code == 200:
            # The origin ignored the range: skip what we already have (the bytes are verified
            # against the manifests afterwards, so a changed file cannot slip through).
            self.response = response
            self._skip(self.offset)
            return
        start = response.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
        if start != str(self.offset):
            response.close()
            raise OriginError(f"{shown(self.url)}: resumed at the wrong offset ({start!r})")
        self.response = response

    def _skip(self, count: int) -> None:
        skipped = 0
        raw = self.response.raw
        while skipped < count:
            data = raw.read(min(CHUNK_SIZE, count - skipped))
            if not data:
                raise _Retryable(f"{shown(self.url)}: body ended while skipping to {count}")
            skipped += len(data)
