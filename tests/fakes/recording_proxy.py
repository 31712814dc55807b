"""The one HTTP proxy in front of the S3 test server: what crossed the wire, and faults on demand.

The `s3_proxy` fixture (tests/conftest.py) points both buckets at `proxy.url`; every request is
forwarded verbatim to the real server (moto) and recorded with its method, path, copy source,
answer status and the body bytes that moved each way. Tests read the record to prove, for
instance, that a promotion moved no file bytes through the worker (server-side copies only).

moto cannot be told to fail, so the proxy does it: `proxy.fail_puts = N` answers the next N
writes (PUT) with S3's own 500 InternalError instead of forwarding them.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "content-length"}
S3_INTERNAL_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str  # decoded, without the query
    query: str
    copy_source: str
    sent: int  # request body bytes (client → server)
    received: int  # response body bytes (server → client)
    status: int  # the answer's status (500: a fault the proxy injected)

    @property
    def bucket_and_key(self) -> tuple[str, str]:
        bucket, _, key = self.path.lstrip("/").partition("/")
        return bucket, key


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int]
    proxy: RecordingProxy

    def log_message(self, *args) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._body()
        with self.proxy.lock:
            fail = self.command == "PUT" and self.proxy.fail_puts > 0
            self.proxy.fail_puts -= 1 if fail else 0
        if fail:
            status, data = 500, S3_INTERNAL_ERROR
            self._answer(500, "Internal Server Error", [("Content-Type", "application/xml")], data)
        else:
            status, data = self._forward(body)
        self._record(body, status, data)

    def _forward(self, body: bytes) -> tuple[int, bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self._answer(answer.status, answer.reason, answer.getheaders(), data)
            return answer.status, data
        finally:
            upstream.close()

    def _answer(self, status: int, reason: str, headers: list, data: bytes) -> None:
        self.send_response(status, reason)
        length = None
        for name, value in headers:
            if name.lower() == "content-length":
                length = value  # a HEAD relays the object's own Content-Length
            elif name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", (self.command == "HEAD" and length) or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _record(self, body: bytes, status: int, data: bytes) -> None:
        split = urlsplit(self.path)
        exchange = Exchange(
            method=self.command,
            path=unquote(split.path),
            query=split.query,
            copy_source=unquote(self.headers.get("x-amz-copy-source", "")),
            sent=len(body),
            received=len(data),
            status=status,
        )
        with self.proxy.lock:
            self.proxy.record.append(exchange)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle


@dataclass
class RecordingProxy:
    url: str = ""
    record: list[Exchange] = field(default_factory=list)
    fail_puts: int = 0  # answer this many of the next PUTs with a 500
    lock: threading.Lock = field(default_factory=threading.Lock)
    httpd: ThreadingHTTPServer | None = None

    def clear(self) -> None:
        with self.lock:
            self.record.clear()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def start_recording_proxy(upstream_url: str) -> RecordingProxy:
    target = urlsplit(upstream_url)
    proxy = RecordingProxy()
    handler = type(
        "RecordingHandler",
        (_Handler,),
        {"upstream": (target.hostname, target.port), "proxy": proxy},
    )
    proxy.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    proxy.httpd.daemon_threads = True
    threading.Thread(
        target=proxy.httpd.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="s3-recording-proxy",
        daemon=True,
    ).start()
    host, port = proxy.httpd.server_address[:2]
    proxy.url = f"http://{host}:{port}"
    return proxy
