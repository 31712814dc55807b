"""One send for a response's headers and its first body bytes (installed by `post_worker_init`
in selfhosted/gunicorn.conf.py).

gunicorn sends a response's headers with one send(2) and each body write with another, so a
manifest (a few hundred bytes) costs two system calls and, on a keep-alive connection, two
wake-ups of the client. Profiled under load, those sends were the largest single cost per feed
request. `GatheringResponse` lets gunicorn's own `write` run unchanged — status, headers,
framing, HEAD and Content-Length rules — against a stand-in socket that only collects, then
hands what it collected to the real socket in one `sendall`. Files sent with sendfile(2) and
later body writes take gunicorn's paths as before.
"""

from __future__ import annotations

from gunicorn.http import wsgi

GATHER_LIMIT = 64 * 1024  # a bigger first write goes out as gunicorn sends it


class _Collector:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.parts.append(bytes(data))


class GatheringResponse(wsgi.Response):
    def write(self, arg):
        if self.headers_sent or not isinstance(arg, bytes) or len(arg) > GATHER_LIMIT:
            return super().write(arg)
        real, collector = self.sock, _Collector()
        self.sock = collector
        try:
            return super().write(arg)
        finally:
            self.sock = real
            if collector.parts:
                real.sendall(b"".join(collector.parts))


def install() -> None:
    """gunicorn builds each response with `gunicorn.http.wsgi.Response`: use this one."""
    wsgi.Response = GatheringResponse
