"""A fake ToDesktop download host: a real HTTP server on loopback serving a realistic build.

The build (`FakeBuild`, in `todesktop_build`) has td JSON manifests and electron-builder yml
twins with correct hashes, installer names with spaces, blockmaps for some files and 404 for
others, and generated contents of any size (streamed, never held in memory).

`FakeOrigin` serves it (and any further builds of the same app) at `<url>/<appId>/<name>`
(GET and HEAD, `Range: bytes=N-[M]`), and nothing more: that is what `manage.py demo` needs to
show the whole flow without a ToDesktop account, so it lives here, outside tests/.

The tests use a subclass, `tests.fakes.todesktop_origin.FakeOrigin`, which adds a request log
and the fault switches (failures, dropped and slow bodies, corrupt bytes, redirects, streams
of any length) through the hooks of `OriginHandler`: `serve`, `send_body` and
`FakeOrigin.source`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from releases.demo.todesktop_build import BLOCK, FakeBuild

__all__ = ["FakeBuild", "FakeOrigin", "OriginHandler", "start_origin"]


class _QuietServer(ThreadingHTTPServer):
    """A client hanging up (a dropped keep-alive, a cancelled download) is normal here."""

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class OriginHandler(BaseHTTPRequestHandler):
    """GET and HEAD of `/<appId>/<name>`, whole or one byte range; 404 for anything else."""

    protocol_version = "HTTP/1.1"
    origin: FakeOrigin

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self.serve(head=True)

    def do_GET(self) -> None:
        self.serve(head=False)

    def requested_path(self) -> str:
        return self.path.split("?", 1)[0]

    def requested_name(self) -> str:
        """The file name after `/<appId>/`, or "" for any other path."""
        prefix = f"/{self.origin.build.app_id}/"
        path = self.requested_path()
        return unquote(path[len(prefix) :]) if path.startswith(prefix) else ""

    def serve(self, *, head: bool) -> None:
        name = self.requested_name()
        found = self.origin.source(name) if name else None
        if found is None:
            return self.empty(404)
        body, size = found
        start, end = self.byte_range(size)
        self.send_response(206 if (start, end) != (0, size) else 200)
        if (start, end) != (0, size):
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if not head:
            self.send_body(name, body, start, end)

    def byte_range(self, size: int) -> tuple[int, int]:
        header = self.headers.get("Range", "")
        if not header.startswith("bytes=") or "," in header:
            return 0, size
        first, _, last = header[6:].partition("-")
        if not first.isdigit() or int(first) >= size:
            return 0, size
        end = int(last) + 1 if last.isdigit() else size
        return int(first), min(end, size)

    def chunks(self, name: str, body: bytes | None, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end) of `name`: of `body` when the origin holds it, else generated."""
        if body is not None:
            for offset in range(start, end, BLOCK):
                yield body[offset : min(offset + BLOCK, end)]
            return
        yield from self.origin.files[name].chunks(start, end)

    def send_body(self, name: str, body: bytes | None, start: int, end: int) -> None:
        for chunk in self.chunks(name, body, start, end):
            try:
                self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return

    def empty(self, status: int) -> None:
        text = f"{status}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(text)


class FakeOrigin:
    handler: type[OriginHandler] = OriginHandler

    def __init__(self, build: FakeBuild, *more: FakeBuild) -> None:
        self.build = build  # the first one; `more` are served beside it (same app id)
        self.builds = (build, *more)
        self.documents = {k: v for each in self.builds for k, v in each.documents().items()}
        self.files = {k: v for each in self.builds for k, v in each.files.items()}
        handler = type("Handler", (self.handler,), {"origin": self})
        self.server = _QuietServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def source(self, name: str) -> tuple[bytes | None, int] | None:
        """(body, size) of `name` — body None for a generated file — or None: not served."""
        if name in self.documents:
            return self.documents[name], len(self.documents[name])
        if name in self.files:
            return None, self.files[name].size
        return None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_origin(build: FakeBuild | None = None, *more: FakeBuild) -> FakeOrigin:
    return FakeOrigin(build or FakeBuild(), *more)
