"""A WSGI application that does nothing: bench/feed.py runs it under `make run`'s gunicorn
settings to show the server's own ceiling on this machine (no Django, a fixed 320-byte body)."""

from __future__ import annotations

BODY = b"version: 42.0.0\n" * 20


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/yaml"), ("Content-Length", str(len(BODY)))])
    return [BODY]
