"""The one file-serving path of the project (the feed, and the download links reuse it).

GET/HEAD of a bucket object with RFC 9110 semantics: validators (ETag, Last-Modified),
preconditions through Django's own `get_conditional_response` (If-Match / If-Unmodified-Since
→ 412, If-None-Match / If-Modified-Since → 304 keeping ETag/Cache-Control/Last-Modified),
If-Range, single/suffix/open ranges (206), several ranges (206 multipart/byteranges), 416.

Memory stays flat: bodies are streamed in bounded chunks. On the filesystem backend a whole
file or a single range is handed to the WSGI server as a real file (gunicorn then uses
sendfile(2); the bytes never enter Python).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Iterator
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.cache import get_conditional_response
from django.utils.http import content_disposition_header, http_date, parse_http_date_safe

from cdn.memory import MAX_BODY_BYTES, objects_memo
from cdn.ranges import ChunkCursor, Unsatisfiable, coalesce, ranges_for
from cdn.resolve import is_manifest
from releases.integrations import buckets

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
SMALL_BODY = 64 * 1024
# `-build-<id>` (electron-builder names) and `Build <id>-` / ` - Build <id>` (ToDesktop's).
DASH_BUILD_RE = re.compile(r"-build-[A-Za-z0-9]+")
SPACE_BUILD_RE = re.compile(r"Build [A-Za-z0-9]+-|\s-\sBuild [A-Za-z0-9]+(?=\.)")
VERSIONED_RE = re.compile(r"\d+\.\d+\.\d+")
PRECONDITION_HEADERS = (
    "HTTP_IF_MATCH",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
)


def feed_filename(key: str) -> str:
    """The served name with only the build id dropped (docs/feed.md examples)."""
    name = key.rsplit("/", 1)[-1]
    if "-build-" in name:
        return DASH_BUILD_RE.sub("", name, count=1)
    return SPACE_BUILD_RE.sub("", name, count=1)


def cache_control_for(key: str) -> str:
    """Manifests are short-lived; files named with a build id or version are immutable."""
    name = key.rsplit("/", 1)[-1]
    if is_manifest(name):
        return settings.FEED_MANIFEST_CACHE_CONTROL
    if "-build-" in name or "Build " in name or VERSIONED_RE.search(name):
        return settings.FEED_IMMUTABLE_CACHE_CONTROL
    return settings.FEED_MANIFEST_CACHE_CONTROL


def _text(status: int, message: str) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def _if_range_passes(request: HttpRequest, info: buckets.ObjectInfo) -> bool:
    """RFC 9110 §13.1.5: a strong ETag match, or a date exactly equal to Last-Modified."""
    value = request.META.get("HTTP_IF_RANGE", "").strip()
    if not value:
        return True
    if value.startswith(('"', "W/")):
        return value == info.http_etag  # a weak tag never equals our strong one
    date = parse_http_date_safe(value)
    return date is not None and date == int(info.last_modified.timestamp())


def _base_headers(info, *, filename, cache_control) -> dict[str, str]:
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": info.http_etag,
        "Last-Modified": http_date(info.last_modified.timestamp()),
        "Content-Type": info.content_type or buckets.content_type_for(info.key),
    }
    if cache_control:
        headers["Cache-Control"] = cache_control
    if filename:
        headers["Content-Disposition"] = content_disposition_header(True, filename)
    return headers


class _FileSlice:
    """`length` bytes of an open file from its current position; exposes fileno() so gunicorn
    sends it with sendfile(2) (it reads the offset from the fd and the length from
    Content-Length), while other servers read it through read()."""

    def __init__(self, handle, length: int) -> None:
        self._handle, self._remaining = handle, length
        self.mode = "rb"

    def fileno(self) -> int:
        return self._handle.fileno()

    def read(self, size: int = -1) -> bytes:
        size = self._remaining if size < 0 else min(size, self._remaining)
        data = self._handle.read(size) if size > 0 else b""
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()


class _Found:
    """An object found in the bucket; on the filesystem its file is already open, so the
    validators and the bytes come from the same inode even if the key is replaced meanwhile.
    `body`: the whole object, from memory (`cdn.memory`)."""

    def __init__(self, bucket, info: buckets.ObjectInfo, handle=None, body=None) -> None:
        self.bucket, self.info, self.handle, self.body = bucket, info, handle, body

    def take_handle(self):
        handle, self.handle = self.handle, None
        return handle

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def immutable_key(key: str) -> bool:
    """A production name that never changes its bytes once promoted (a build id or, for files
    other than channel manifests, a version in the name): safe to keep in memory."""
    name = key.rsplit("/", 1)[-1]
    if "-build-" in name or "Build " in name:
        return True
    return not is_manifest(name) and VERSIONED_RE.search(name) is not None


def _find(bucket: buckets.Bucket, key: str) -> _Found | None:
    memo = objects_memo(bucket) if immutable_key(key) else None
    if memo is not None and (hit := memo.get(key)) is not None:
        return _Found(bucket, hit[0], body=hit[1])
    found = _find_in_bucket(bucket, key)
    if memo is not None and found is not None:
        _remember(memo, found)
    return found


def _remember(memo, found: _Found) -> None:
    info = found.info
    if info.size <= MAX_BODY_BYTES:
        if found.handle is not None:
            found.body = os.pread(found.handle.fileno(), info.size, 0)
        else:
            found.body = b"".join(found.bucket.read(info.key))
        if len(found.body) != info.size:  # replaced meanwhile: keep nothing
            found.body = None
            return
        memo.put(info.key, (info, found.body), size=info.size)
    elif found.handle is None:  # S3: the validators spare a HEAD; the filesystem's are free
        memo.put(info.key, (info, None))


def _find_in_bucket(bucket: buckets.Bucket, key: str) -> _Found | None:
    # A local file (the filesystem backend) is opened once and sent by sendfile; a missing key
    # raises ObjectNotFound (→ 404).
    local = bucket.open_local(key)
    if local is not None:
        handle, info = local
        return _Found(bucket, info, handle)
    info = bucket.head(key)
    return _Found(bucket, info) if info is not None else None


def _file_body(found: _Found, start: int, stop: int, status: int):
    if found.body is not None:
        return HttpResponse(found.body[start:stop], status=status)
    if found.handle is not None and stop - start <= SMALL_BODY:
        # Manifests: one pread beats the sendfile dance (lseek, fstat, sendfile, lseek).
        return HttpResponse(os.pread(found.handle.fileno(), stop - start, start), status=status)
    handle = found.take_handle()
    if handle is not None:
        handle.seek(start)
        response = FileResponse(_FileSlice(handle, stop - start), status=status)
        response.block_size = CHUNK_SIZE
        return response
    stream = found.bucket.read(found.info.key, start, stop - start)
    return StreamingHttpResponse(stream, status=status)


def _multipart_stream(found: _Found, parts: list[tuple[bytes, int, int]], end: bytes):
    handle, bucket, key = found.take_handle(), found.bucket, found.info.key

    heads = {(start, stop): head for head, start, stop in parts}

    def from_file() -> Iterator[bytes]:
        try:
            for head, start, stop in parts:
                yield head
                for offset in range(start, stop, CHUNK_SIZE):
                    yield os.pread(handle.fileno(), min(CHUNK_SIZE, stop - offset), offset)
                yield b"\r\n"
            yield end
        finally:
            handle.close()

    def from_bucket() -> Iterator[bytes]:
        for group_start, group_stop, members in coalesce([(a, b) for _, a, b in parts]):
            cursor = ChunkCursor(
                bucket.read(key, group_start, group_stop - group_start), group_start
            )
            for start, stop in members:
                cursor.skip_to(start)
                yield heads[(start, stop)]
                yield from cursor.take(stop - start)
                yield b"\r\n"
        yield end

    def from_memory() -> Iterator[bytes]:
        for head, start, stop in parts:
            yield head + found.body[start:stop] + b"\r\n"
        yield end

    if found.body is not None:
        return from_memory()
    return from_file() if handle is not None else from_bucket()


def _multipart(request, found: _Found, ranges, headers):
    info = found.info
    boundary = secrets.token_hex(16)
    ctype = headers["Content-Type"]
    parts = []
    for start, stop in ranges:
        head = (
            f"--{boundary}\r\nContent-Type: {ctype}\r\n"
            f"Content-Range: bytes {start}-{stop - 1}/{info.size}\r\n\r\n"
        ).encode()
        parts.append((head, start, stop))
    end = f"--{boundary}--\r\n".encode()
    length = sum(len(head) + (stop - start) + 2 for head, start, stop in parts) + len(end)
    headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return HttpResponse(status=206)
    return StreamingHttpResponse(_multipart_stream(found, parts, end), status=206)


def _body(request, found: _Found, ranges, headers) -> HttpResponse:
    info = found.info
    if ranges is not None and len(ranges) > 1:
        return _multipart(request, found, ranges, headers)
    start, stop = ranges[0] if ranges else (0, info.size)
    status = 206 if ranges else 200
    if ranges:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{info.size}"
    headers["Content-Length"] = str(stop - start)
    if request.method == "HEAD" or stop == start:
        return HttpResponse(status=status)
    return _file_body(found, start, stop, status)


def _respond(request, bucket, key, filename, cache_control) -> HttpResponse:
    found = _find(bucket, key)
    if found is None:
        return _text(404, "Not Found")
    try:
        return _respond_found(request, found, filename, cache_control)
    finally:
        found.close()  # unless a streaming response took the file


def _respond_found(request, found: _Found, filename, cache_control) -> HttpResponse:
    info = found.info
    headers = _base_headers(info, filename=filename, cache_control=cache_control)
    if any(name in request.META for name in PRECONDITION_HEADERS):  # most polls carry none
        probe = HttpResponse(headers=headers)
        last_modified = int(info.last_modified.timestamp())
        conditional = get_conditional_response(request, info.http_etag, last_modified, probe)
        if conditional is not probe:
            return conditional  # 304 (validators kept) or 412
    ranges = None
    if _if_range_passes(request, info):
        try:
            ranges = ranges_for(request.META.get("HTTP_RANGE"), info.size)
        except Unsatisfiable:
            response = _text(416, "Range Not Satisfiable")
            response["Content-Range"] = f"bytes */{info.size}"
            response["Accept-Ranges"] = "bytes"
            return response
    if ranges is None and (redirect := _redirect(request, found, filename)) is not None:
        return redirect
    response = _body(request, found, ranges, headers)
    for name, value in headers.items():
        response[name] = value
    return response


def _redirect(request, found: _Found, filename: str | None) -> HttpResponse | None:
    """A full GET of a big S3 object goes to the bucket itself (S3_REDIRECT): the bytes never
    pass through this process. Ranges (several of them: S3 and R2 answer only one) and HEAD
    are still answered here."""
    mode = settings.S3_REDIRECT
    if mode == "off" or request.method != "GET" or not found.bucket.direct_urls:
        return None
    info = found.info
    if info.size < settings.S3_REDIRECT_MIN_BYTES:
        return None
    if mode == "public":
        base = settings.S3_REDIRECT_PUBLIC_BASE_URL.rstrip("/")
        location = f"{base}/{quote(info.key)}"
    else:
        location = found.bucket.presigned_get(
            info.key, filename=filename, expires=settings.S3_REDIRECT_EXPIRES_SECONDS
        )
    response = HttpResponse(status=302)
    response["Location"] = location
    # A presigned URL expires, and a link moves with releases: no cache may keep the redirect.
    response["Cache-Control"] = "no-store"
    return response


def without_body_for_head(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """RFC 9110 §9.3.2: no content in an answer to HEAD (its length is still announced).

    Our plain-text answers (404, 416, 400, my-ip…) carry a body; gunicorn drops it with a warning
    per request, other WSGI servers may send it and break the connection's framing.
    """
    if request.method == "HEAD" and not response.streaming and response.content:
        response["Content-Length"] = str(len(response.content))
        response.content = b""
    return response


def serve_object(
    request: HttpRequest,
    *,
    bucket: buckets.Bucket,
    key: str,
    filename: str | None,
    cache_control: str | None,
) -> HttpResponse:
    """GET/HEAD `key` of `bucket`; 404 when missing, 503 when the storage fails."""
    return without_body_for_head(request, _serve(request, bucket, key, filename, cache_control))


def _serve(request, bucket, key, filename, cache_control) -> HttpResponse:
    try:
        return _respond(request, bucket, key, filename, cache_control)
    except (buckets.ObjectNotFound, buckets.InvalidKey):
        return _text(404, "Not Found")
    except (buckets.BucketError, OSError) as exc:
        # Storage unreachable: a clear 503, never a 500.
        logger.warning("serving %s failed: %s", key, exc)
        return _text(503, "Storage unavailable")
