"""What gunicorn's gevent worker needs beyond monkey-patching (installed by `post_worker_init` in
gunicorn.conf.py): sendfile(2) on the event loop, and SQLite statements off it.

sendfile:

gevent's sockets send a file by reading it into Python 8 KiB at a time and calling send(),
because a plain os.sendfile() on a socket would block the whole process. This one calls
os.sendfile() on the non-blocking socket and, when the socket's buffer is full, waits for it to
become writable on the event loop: the bytes never enter Python and a slow client parks its
greenlet, not the worker.
"""

from __future__ import annotations

import os

from django.db import connections
from django.db.backends.signals import connection_created

BLOCK = 1024 * 1024


def green_sendfile(self, file, offset: int = 0, count: int | None = None) -> int:
    from gevent.socket import wait_write

    sock_fd, file_fd = self.fileno(), file.fileno()
    total = 0
    try:
        while count is None or total < count:
            block = BLOCK if count is None else min(BLOCK, count - total)
            try:
                sent = os.sendfile(sock_fd, file_fd, offset + total, block)
            except BlockingIOError:
                wait_write(sock_fd, timeout=self.gettimeout())  # raises socket.timeout
                continue
            if sent == 0:  # end of file
                break
            total += sent
        return total
    finally:
        if total:  # like socket.sendfile: the file's position follows what was sent
            os.lseek(file_fd, offset + total, os.SEEK_SET)


def sqlite_off_loop(execute, sql, params, many, context):
    """A Django execute wrapper: run the statement on gevent's thread pool, the greenlet waits.

    SQLite waits for another process's write lock (the busy timeout: 20 s by default) inside
    the C library, on the calling OS thread. Under gevent that thread is the event loop, so one
    webhook waiting to write paused every download and feed poll of its web process. On a pool
    thread only the waiting request waits; the connection is Django's, used by one greenlet at a
    time (Django opens SQLite connections with check_same_thread=False).
    """
    from gevent import get_hub

    return get_hub().threadpool.apply(execute, (sql, params, many, context))


def _sqlite_wrap(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite" and sqlite_off_loop not in connection.execute_wrappers:
        connection.execute_wrappers.append(sqlite_off_loop)


def install() -> None:
    """Give gevent's socket class this sendfile (what gunicorn calls for a file response); run
    SQLite's statements off the event loop."""
    from gevent import socket as gevent_socket

    gevent_socket.socket.sendfile = green_sendfile
    connection_created.connect(_sqlite_wrap, weak=False)
    for connection in connections.all(initialized_only=True):
        _sqlite_wrap(type(connection), connection)
