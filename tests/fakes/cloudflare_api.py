"""A fake Cloudflare API v4 on loopback: the cache purge by URL, as documented
(https://developers.cloudflare.com/api/resources/cache/methods/purge/).

`POST /client/v4/zones/<zone id>/purge_cache` with `Authorization: Bearer <token>` and
`{"files": ["https://…", …]}` (1 to 30 absolute URLs) answers Cloudflare's envelope
`{"success": true, "errors": [], "messages": [], "result": {"id": …}}`; a wrong token gets 403
with error 10000, an unknown zone 404 with 7003, a bad body 400 with 1012, as the real API.

    cf = start_cloudflare(zone="zone123", token="cf-token")
    cf.api_base                 # what CLOUDFLARE_API_BASE_URL is set to
    cf.fail(503, times=2)       # the next two purges get a 503 (429 carries Retry-After)
    cf.purges                   # the URL lists of the purges that succeeded, in order
    cf.attempts                 # every purge request, successful or not
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PURGE_PATH = re.compile(r"^/client/v4/zones/(?P<zone>[^/]+)/purge_cache$")
MAX_FILES = 30


@dataclass
class FakeCloudflare:
    httpd: ThreadingHTTPServer
    zone: str
    token: str
    purges: list[list[str]] = field(default_factory=list)
    attempts: list[dict] = field(default_factory=list)
    faults: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/client/v4"

    def fail(self, status: int, *, times: int = 1) -> None:
        with self.lock:
            self.faults.extend([status] * times)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _envelope(success: bool, *, errors=(), result=None) -> dict:
    errors = [{"code": code, "message": message} for code, message in errors]
    return {"success": success, "errors": errors, "messages": [], "result": result}


class _Handler(BaseHTTPRequestHandler):
    cf: FakeCloudflare

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        status, answer = self._purge(body)
        with self.cf.lock:
            self.cf.attempts.append({"path": self.path, "status": status, "body": body})
        raw = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if status == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _purge(self, body: bytes) -> tuple[int, dict]:
        cf = self.cf
        match = PURGE_PATH.match(self.path)
        if match is None:
            return 404, _envelope(False, errors=[(7000, "No route for that URI")])
        if self.headers.get("Authorization") != f"Bearer {cf.token}":
            return 403, _envelope(False, errors=[(10000, "Authentication error")])
        if match["zone"] != cf.zone:
            return 404, _envelope(False, errors=[(7003, "Could not route to /zones/…")])
        with cf.lock:
            fault = cf.faults.pop(0) if cf.faults else None
        if fault is not None:
            return fault, _envelope(False, errors=[(fault, "fault injected by the test")])
        files = self._files(body)
        if files is None:
            return 400, _envelope(False, errors=[(1012, "Request must contain files")])
        with cf.lock:
            cf.purges.append(files)
        return 200, _envelope(True, result={"id": uuid.uuid4().hex})

    @staticmethod
    def _files(body: bytes) -> list[str] | None:
        try:
            files = json.loads(body).get("files")
        except (ValueError, AttributeError):
            return None
        valid = isinstance(files, list) and 0 < len(files) <= MAX_FILES
        if not valid or not all(
            isinstance(f, str) and f.startswith(("https://", "http://")) for f in files
        ):
            return None
        return files

    def log_message(self, format, *args) -> None:
        pass


def start_cloudflare(
    *, zone: str = "023e105f4ecef8ad9ca31a8372d0c353", token: str = "cf-test-token"
) -> FakeCloudflare:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    cf = FakeCloudflare(httpd=httpd, zone=zone, token=token)
    httpd.RequestHandlerClass = type("BoundHandler", (_Handler,), {"cf": cf})
    threading.Thread(
        target=httpd.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="fake-cloudflare",
        daemon=True,
    ).start()
    return cf
