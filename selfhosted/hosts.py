"""Serve the feed / the download links at `/` for the host names in FEED_HOSTS / DOWNLOAD_HOSTS.

A deployment can keep one hostname per role exactly like the original three workers
(`https://feed.example.com/latest.yml`), while every other host keeps the normal URL layout.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http.request import split_domain_port
from django.urls import include, path


class FeedRootUrls:
    """A urlconf (any object with `urlpatterns`): the feed at the root path."""

    urlpatterns = [path("", include("cdn.urls"))]


class DownloadRootUrls:
    urlpatterns = [path("", include("downloads.urls"))]


class HostRoutingMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        urlconf = self._urlconf_for(request)
        if urlconf is not None:
            request.urlconf = urlconf
        return self.get_response(request)

    @staticmethod
    def _urlconf_for(request):
        if not (settings.FEED_HOSTS or settings.DOWNLOAD_HOSTS):
            return None
        try:
            host = request.get_host()
        except DisallowedHost:
            return None  # CommonMiddleware answers 400 for it
        host, _port = split_domain_port(host)
        if host in settings.FEED_HOSTS:
            return FeedRootUrls
        if host in settings.DOWNLOAD_HOSTS:
            return DownloadRootUrls
        return None
