"""A receiver on loopback that records every request: a stand-in for a Slack incoming webhook,
a team's webhook endpoint or a generic purge endpoint (real HTTP: status codes, headers, the
raw body as sent).

    catcher = start_catcher()
    catcher.url                    # http://127.0.0.1:<port>
    catcher.fail(503, times=2)     # the next two requests get a 503
    catcher.redirect_to(url)       # every request gets a 302 to `url`
    catcher.requests               # [Caught(method, path, headers, body), …]
    catcher.wait_for(3)            # block until three requests arrived
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Caught:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int  # what the catcher answered

    def json(self):
        return json.loads(self.body)


@dataclass
class Catcher:
    httpd: ThreadingHTTPServer
    requests: list[Caught] = field(default_factory=list)
    faults: list[int] = field(default_factory=list)
    redirect: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, status: int, *, times: int = 1) -> None:
        with self.lock:
            self.faults.extend([status] * times)

    def redirect_to(self, url: str) -> None:
        self.redirect = url

    def answered(self, status: int) -> list[Caught]:
        return [r for r in self.requests if r.status == status]

    def wait_for(self, count: int, *, timeout: float = 30.0) -> list[Caught]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} of {count} requests arrived")
            time.sleep(0.05)
        return list(self.requests)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    catcher: Catcher

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        catcher = self.catcher
        with catcher.lock:
            status = catcher.faults.pop(0) if catcher.faults else (302 if catcher.redirect else 200)
            catcher.requests.append(
                Caught(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    status,
                )
            )
        answer = b"ok" if status == 200 else f"status {status}".encode()
        self.send_response(status)
        if status == 302:
            self.send_header("Location", catcher.redirect)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_POST = do_PUT = do_GET = do_PURGE = do_DELETE = _handle

    def log_message(self, format, *args) -> None:  # keep the test output clean
        pass


def start_catcher() -> Catcher:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    catcher = Catcher(httpd=httpd)
    httpd.RequestHandlerClass = type("BoundHandler", (_Handler,), {"catcher": catcher})
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="http-catcher", daemon=True
    ).start()
    return catcher
