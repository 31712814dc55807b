"""The WSGI handler: Django's, minus the per-request work the feed and the download links do
not need.

Django sends `request_started` and `request_finished` around every request; their receivers
(`close_old_connections`, `reset_queries`) walk every database connection twice per request.
The feed and the download links never touch the database, so for their paths (the `/update/`
and `/download/` mounts, and any path on FEED_HOSTS / DOWNLOAD_HOSTS) both signals are skipped;
the response still closes its files. Every other request (admin, API, webhooks, /healthz) goes
through Django's handler unchanged.

A plain poll of the feed whose answer is already known is answered from memory before Django
builds a request at all (cdn/replies.py).
"""

from __future__ import annotations

import functools

from django.core.handlers.wsgi import WSGIHandler, get_script_name
from django.urls import set_script_prefix

from cdn.replies import remember, replay
from selfhosted.hosts import lane


def _is_fast_lane(environ: dict) -> bool:
    return lane(environ.get("HTTP_HOST", ""), environ.get("PATH_INFO", "")) is not None


def _close_without_signal(response) -> None:
    for closer in response._resource_closers:
        try:
            closer()
        except Exception:  # as Django's own close: a failing closer must not hide the others
            pass
    response._resource_closers.clear()
    response.closed = True


class FastLaneHandler(WSGIHandler):
    def __call__(self, environ, start_response):
        if not _is_fast_lane(environ):
            return super().__call__(environ, start_response)
        replayed = replay(environ, start_response)
        if replayed is not None:
            return replayed
        set_script_prefix(get_script_name(environ))
        request = self.request_class(environ)
        response = self.get_response(request)
        remember(environ, response)
        response.close = functools.partial(_close_without_signal, response)
        status = f"{response.status_code} {response.reason_phrase}"
        start_response(status, list(response.items()))  # no cookies on these paths
        if getattr(response, "file_to_stream", None) is not None and environ.get(
            "wsgi.file_wrapper"
        ):
            # As Django does: the server closes the wrapper, which must close the response.
            response.file_to_stream.close = response.close
            response = environ["wsgi.file_wrapper"](response.file_to_stream, response.block_size)
        return response
