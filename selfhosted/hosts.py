"""Host- and path-based routing that runs before the rest of the middleware stack.

- `FEED_HOSTS` / `DOWNLOAD_HOSTS`: serve the feed / the download links at `/` of those host
  names, so a deployment can keep one hostname per role exactly like the original three
  workers (`https://feed.example.com/latest.yml`); other hosts keep the normal URL layout.
- The feed is a fast lane: every installed app polls it (SPEC §13 asks ≥ 3,000 req/s on two
  cores), and it needs none of the session, auth, CSRF, messages, static-file or clickjacking
  middleware that follow this one, so its requests go straight to the feed view once the host
  has been validated against ALLOWED_HOSTS. Everything else takes the normal path.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http.request import split_domain_port
from django.urls import Resolver404, include, path, resolve


class FeedRootUrls:
    """A urlconf (any object with `urlpatterns`): the feed at the root path."""

    urlpatterns = [path("", include("cdn.urls"))]


class DownloadRootUrls:
    urlpatterns = [path("", include("downloads.urls"))]


class FeedPrefixUrls:
    """The feed at its default mount, for the fast lane on every other host."""

    urlpatterns = [path("update/", include("cdn.urls"))]


FEED_PREFIX = "/update/"


class HostRoutingMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        try:
            host, _port = split_domain_port(request.get_host())
        except DisallowedHost:
            return self.get_response(request)  # CommonMiddleware answers 400 for it
        if host in settings.FEED_HOSTS:
            return self._feed(request, FeedRootUrls)
        if host in settings.DOWNLOAD_HOSTS:
            request.urlconf = DownloadRootUrls
            return self.get_response(request)
        if request.path_info.startswith(FEED_PREFIX):
            return self._feed(request, FeedPrefixUrls)
        return self.get_response(request)

    def _feed(self, request, urlconf):
        request.urlconf = urlconf
        try:
            match = resolve(request.path_info, urlconf)
        except Resolver404:
            return self.get_response(request)
        request.resolver_match = match
        return match.func(request, *match.args, **match.kwargs)
