"""Host- and path-based routing that runs before the rest of the middleware stack.

- `FEED_HOSTS` / `DOWNLOAD_HOSTS`: serve the feed / the download links at `/` of those host
  names, so a deployment can keep one hostname per role exactly like the original three
  workers (`https://feed.example.com/latest.yml`); other hosts keep the normal URL layout.
- The feed and the download links are fast lanes: every installed app polls the feed and every
  website visitor hits a download link (docs/budgets.md asks ≥ 3,000 and ≥ 2,000 req/s on two
  cores),
  and neither needs the session, auth, CSRF, messages, static-file or clickjacking middleware
  that follow this one, so their requests go straight to their views once the host has been
  validated against ALLOWED_HOSTS. Everything else takes the normal path.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http.request import split_domain_port
from django.urls import Resolver404, ResolverMatch, include, path, resolve

from cdn.views import feed


class FeedRootUrls:
    """A urlconf (any object with `urlpatterns`): the feed at the root path."""

    urlpatterns = [path("", include("cdn.urls"))]


class DownloadRootUrls:
    urlpatterns = [path("", include("downloads.urls"))]


class FeedPrefixUrls:
    """The feed at its default mount, for the fast lane on every other host."""

    urlpatterns = [path("update/", include("cdn.urls"))]


class DownloadPrefixUrls:
    urlpatterns = [path("download/", include("downloads.urls"))]


FEED_PREFIX = "/update/"
DOWNLOAD_PREFIX = "/download/"


def dot_segments_remove(path: str) -> str:
    """RFC 3986 §5.2.4 on a path relative to its mount: `a/./b` → `a/b`, `a/../b` → `b`,
    `a/b/..` → `a/` (a final dot segment leaves its slash); empty segments are kept."""
    segments = path.split("/")
    out: list[str] = []
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if segment in (".", ".."):
            if segment == ".." and out:
                out.pop()
            if index == last:
                out.append("")
            continue
        out.append(segment)
    return "/".join(out)


def lane(host: str, path_info: str) -> tuple[type, str] | None:
    """The fast lane a request takes, as (urlconf, mount), or None for Django's normal stack.

    The one routing decision: HostRoutingMiddleware, the WSGI handler (selfhosted/handler.py)
    and the replayed feed answers (cdn/replies.py) all ask it. `host` is a Host header's value,
    port included; a role host (FEED_HOSTS, DOWNLOAD_HOSTS) wins over the path."""
    if settings.FEED_HOSTS or settings.DOWNLOAD_HOSTS:
        domain, _port = split_domain_port(host)
        if domain in settings.FEED_HOSTS:
            return FeedRootUrls, "/"
        if domain in settings.DOWNLOAD_HOSTS:
            return DownloadRootUrls, "/"
    if path_info.startswith(FEED_PREFIX):
        return FeedPrefixUrls, FEED_PREFIX
    if path_info.startswith(DOWNLOAD_PREFIX):
        return DownloadPrefixUrls, DOWNLOAD_PREFIX
    return None


class HostRoutingMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        try:
            found = lane(request.get_host(), request.path_info)
        except DisallowedHost:
            return self.get_response(request)  # CommonMiddleware answers 400 for it
        if found is None:
            return self.get_response(request)
        return self._fast(request, *found)

    def _fast(self, request, urlconf, mount: str):
        rest = request.path_info[len(mount) :]
        if "/." in "/" + rest and (normalized := dot_segments_remove(rest)) != rest:
            # `/download/builds/../windows` is `/download/windows`, as for the original (every
            # URL parser removes dot segments); `..` never climbs above the mount.
            rest = normalized
            request.path_info = mount + normalized
            request.path = request.META.get("SCRIPT_NAME", "").rstrip("/") + request.path_info
        request.urlconf = urlconf
        if urlconf in FEED_URLCONFS:
            # Every feed path belongs to the one feed view: no URL resolution needed.
            return feed(request, path=rest)
        try:
            match = _resolve(request.path_info, urlconf)
        except Resolver404:
            return self.get_response(request)
        request.resolver_match = match
        return match.func(request, *match.args, **match.kwargs)


FEED_URLCONFS = (FeedRootUrls, FeedPrefixUrls)


@functools.lru_cache(maxsize=4096)
def _resolve(path: str, urlconf: type) -> ResolverMatch:
    """Download links are a few hot paths (`/download/mac`…): resolve each once."""
    return resolve(path, urlconf)
