"""gunicorn settings shared by `make run` and the container (`gunicorn -c` this file).

The worker class is gevent: each connection is a greenlet, so a download to a slow client holds
a few kilobytes of memory and no thread (the file goes out with sendfile(2) on the filesystem
backend, in 1 MiB chunks from S3), and thousands of them never starve the feed, the admin or
the webhooks (README, "Production"). gunicorn still parses HTTP, so webhooks keep its chunked
bodies and the 413 drain. Measured on 2 cores (bench/feed.py): 2 worker processes with
SO_REUSEPORT. Override any of these with GUNICORN_CMD_ARGS (gunicorn reads it natively), e.g.
`--workers 4`.
"""

from __future__ import annotations

import os

bind = f"{os.environ.get('BIND_ADDRESS', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gevent"
# Open connections per worker process (slow downloads included); the backlog queues the rest.
worker_connections = int(os.environ.get("WEB_CONNECTIONS", "2000"))
backlog = 2048
reuse_port = True
keepalive = 75  # electron-updater and browsers reuse connections
# Downloads stream for a long time; a worker is only killed when it stops responding.
timeout = 120
graceful_timeout = 30
control_socket_disable = True  # instances side by side must not share one per-user socket
accesslog = "-"
# The same access lines as gunicorn's own logger, without building every atom per request.
logger_class = "selfhosted.accesslog.AccessLogger"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def post_worker_init(worker) -> None:
    """Headers and a small body in one send (selfhosted/wire.py); after gevent's
    monkey-patching, real sendfile(2) on the event loop (selfhosted/green.py)."""
    # Imported only now: gunicorn reads this file before --chdir puts the project on sys.path.
    from selfhosted.wire import install as gather_sends

    gather_sends()
    if type(worker).__name__.startswith("Gevent"):
        from selfhosted.green import install

        install()


def post_request(worker, req, environ, resp) -> None:
    """Let the other connections run between two requests of one keep-alive connection.

    A greenlet only yields when it would block; a client that sends its next request at once
    would otherwise be served again and again while the others wait (p99 of seconds measured).
    `idle()` rather than `sleep(0)`: it waits until the loop has polled for I/O, so connections
    whose requests just arrived run first (`sleep(0)` still left a p99 near 1 s).
    """
    if type(worker).__name__.startswith("Gevent"):
        import gevent

        gevent.idle()
