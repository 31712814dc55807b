"""Feed answers replayed from memory: the hot poll without Django's request and response objects
(docs/feed.md, "Serving from memory"; docs/budgets.md).

Nearly every feed request is a poll: `GET /update/latest-mac.yml` with no Range and no
precondition. The rules resolve it to a production name with a build id
(`latest-mac-build-<id>.yml`), and such an object never changes once promoted. So the whole
answer Django gives — status line, the view's headers and SecurityMiddleware's, body — is the
same for every request that

- resolves to that name with the rules in force,
- has the same method, `Host` header and scheme (the HTTPS proxy header included),
- and carries no Range, If-Range or precondition header.

The first such request goes through Django (selfhosted/handler.py) and its answer is kept here
when it is a plain 200 with no cookie and no Vary; later ones are answered from memory. What
still runs for every request is what decides which answer it gets — the view's path checks, the
client address, the rule walk (IP, platform, percentage rollouts, schedules) — through the same
functions the view calls, and the adoption count. Anything unusual (another method, a Range, a
dot segment, `my-ip`, an invalid path, an unknown Host) simply goes to Django, which answers it.

The memo is the bounded one of cdn/memory.py: it empties whenever production's control files
change (a promotion, a withdrawal, a halt), and an answer computed from older metadata is
never kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import get_path_info
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpResponse

from adoption.counting import count_feed
from cdn.memory import memos_reset, replies_memo
from cdn.metadata import metadata_generation
from cdn.serving import PRECONDITION_HEADERS, immutable_key
from cdn.views import FEED_KEY, feed_key, raw_path_is_valid
from releases.integrations import buckets
from selfhosted.hosts import FEED_URLCONFS, lane

# Request headers that change the answer beyond the key: those go to Django every time.
PASS_HEADERS = (*PRECONDITION_HEADERS, "HTTP_RANGE", "HTTP_IF_RANGE")
PENDING = "selfhosted.feed_reply"  # environ: the slot a Django answer may fill


def _feed_path(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(route, path below the feed's mount) when HostRoutingMiddleware would send this request
    to the feed view, else None."""
    if settings.USE_X_FORWARDED_HOST or environ.get("SCRIPT_NAME"):
        return None  # rare set-ups: Django's own host and prefix handling decides
    host = environ.get("HTTP_HOST")
    if not host:
        return None
    path_info = get_path_info(environ)
    found = lane(host, path_info)
    if found is None or found[0] not in FEED_URLCONFS:
        return None
    mount = found[1]
    return mount, path_info[len(mount) :]


def _slot(environ: dict[str, Any]) -> tuple[tuple, str, str] | None:
    """(memo slot, feed path, production key) of a plain poll, or None."""
    method = environ.get("REQUEST_METHOD")
    if method not in ("GET", "HEAD") or any(name in environ for name in PASS_HEADERS):
        return None
    found = _feed_path(environ)
    if found is None:
        return None
    route, path = found
    if path in ("", "my-ip") or "/." in "/" + path or not raw_path_is_valid(environ):
        return None
    try:
        buckets.check_key(path)
    except buckets.InvalidKey:
        return None
    key = feed_key(environ, path)
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    https = environ.get(proxy_header[0]) if proxy_header else None
    scheme = environ.get("wsgi.url_scheme")
    return (method, environ["HTTP_HOST"], scheme, https, route, key), path, key


def replay(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes] | None:
    """The kept answer to this request, sent; None when Django must answer it."""
    try:
        found = _slot(environ)
        if found is None:
            return None
        slot, path, key = found
        # Django resolves the key again after this; if the metadata moves in between, the
        # keys differ or the generation does, and `remember` keeps nothing.
        generation = metadata_generation()
        memo = replies_memo(buckets.production())
        reply = memo.get(slot)
    except Exception:  # whatever failed, Django meets it again and answers it properly
        return None
    if reply is None:
        environ[PENDING] = (memo, slot, key, generation)
        return None
    status, headers, body = reply
    count_feed(environ, path=path, key=key, status=200)
    start_response(status, list(headers))
    return [body]


def remember(environ: dict[str, Any], response: HttpResponse) -> None:
    """Keep Django's answer to a poll that `replay` could not answer, when every later request
    with the same slot is sure to get the same bytes."""
    pending = environ.get(PENDING)
    if pending is None:
        return
    memo, slot, key, generation = pending
    if environ.get(FEED_KEY) != key or not immutable_key(key):
        return  # the view resolved another name (the metadata moved), or a mutable one
    if response.status_code != 200 or response.streaming or response.cookies:
        return
    if response.has_header("Vary") or response.has_header("Set-Cookie"):
        return
    body = response.content
    status = f"{response.status_code} {response.reason_phrase}"
    headers = tuple(response.items())
    size = len(body) + sum(len(name) + len(value) for name, value in headers)
    memo.put(slot, (status, headers, body), size=size, generation=generation)


@receiver(setting_changed)
def _settings_changed(**kwargs) -> None:
    memos_reset()  # a kept answer carries the headers of the settings it was made with
