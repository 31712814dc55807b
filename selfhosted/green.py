"""sendfile(2) for gunicorn's gevent worker (installed by `post_worker_init` in gunicorn.conf.py).

gevent's sockets send a file by reading it into Python 8 KiB at a time and calling send(),
because a plain os.sendfile() on a socket would block the whole process. This one calls
os.sendfile() on the non-blocking socket and, when the socket's buffer is full, waits for it to
become writable on the event loop: the bytes never enter Python and a slow client parks its
greenlet, not the worker.
"""

from __future__ import annotations

import os

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


def install() -> None:
    """Give gevent's socket class this sendfile (what gunicorn calls for a file response)."""
    from gevent import socket as gevent_socket

    gevent_socket.socket.sendfile = green_sendfile
