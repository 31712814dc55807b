"""The update feed for electron-updater clients (docs/feed.md): `/update/<path>` and FEED_HOSTS
`/`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt

from adoption.counting import count_feed
from cdn.clientip import client_ip, client_ip_of
from cdn.metadata import metadata_get
from cdn.resolve import resolve_key
from cdn.serving import cache_control_for, feed_filename, serve_object, without_body_for_head
from releases.integrations import buckets

BROKEN_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# The environ key under which the view leaves the production key it resolved.
FEED_KEY = "selfhosted.feed_key"


def _text(status: int, message: str) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def raw_path_is_valid(meta: Mapping[str, Any]) -> bool:
    """The raw path has only well-formed `%XX` escapes of UTF-8 text.

    The WSGI server hands Django an already-unquoted path where `%zz` and `%25zz` look alike, so
    the check reads the raw request line when the server provides it (gunicorn's RAW_URI).
    """
    raw = meta.get("RAW_URI") or meta.get("REQUEST_URI")
    if not raw:
        return True
    raw_path = raw.split("?", 1)[0]
    if BROKEN_ESCAPE_RE.search(raw_path):
        return False
    try:
        unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _only_empty_segments(path: str) -> bool:
    """True when `path` is a valid key but for empty segments (leading, trailing, doubled `/`)."""
    try:
        buckets.check_key("/".join(part for part in path.split("/") if part))
    except buckets.InvalidKey:
        return False
    return True


@csrf_exempt  # no state changes here; other methods must get 405, not a CSRF 403
def feed(request: HttpRequest, path: str = "") -> HttpResponse:
    return without_body_for_head(request, _feed(request, path))


def _feed(request: HttpRequest, path: str) -> HttpResponse:
    if not raw_path_is_valid(request.META):
        return _text(400, "Bad Request: malformed percent-encoding")
    if path == "":
        return _text(400, "Bad Request")
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"], content=b"Method Not Allowed")
    if path == "my-ip":
        return _text(200, client_ip(request) or "")
    try:
        buckets.check_key(path)
    except buckets.InvalidKey:
        if _only_empty_segments(path):
            # `nsis-web/`, `/latest.yml` (from `//latest.yml`), `my-ip/`: names no object can
            # ever have, so "not found", as the original answers.
            return _text(404, "Not Found")
        return _text(400, "Bad Request: invalid path")
    key = feed_key(request.META, path)
    request.META[FEED_KEY] = key  # what the replies memo checks (cdn/replies.py)
    response = serve_object(
        request,
        bucket=buckets.production(),
        key=key,
        filename=feed_filename(key),
        cache_control=cache_control_for(key),
    )
    count_feed(request.META, path=path, key=key, status=response.status_code)
    return response


def feed_key(meta: Mapping[str, Any], path: str) -> str:
    """The production key that answers a valid feed `path` for this request."""
    return resolve_key(
        path=path,
        metadata=metadata_get(),
        client_ip=client_ip_of(meta),
        staging_id=meta.get("HTTP_X_USER_STAGING_ID"),
    )
