"""A recording HTTP proxy in front of the S3 test server: what crossed the wire, and how much.

Point `AWS_S3_ENDPOINT_URL` at `proxy.url`; every request is forwarded verbatim to the real
server (moto) and recorded with its method, path, copy source and the body bytes that moved
each way. Tests read the record to prove, for instance, that a promotion moved no file bytes
through the worker (server-side copies only).
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "content-length"}


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str  # decoded, without the query
    query: str
    copy_source: str
    sent: int  # request body bytes (client → server)
    received: int  # response body bytes (server → client)

    @property
    def bucket_and_key(self) -> tuple[str, str]:
        bucket, _, key = self.path.lstrip("/").partition("/")
        return bucket, key


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int]
    record: list[Exchange]
    lock: threading.Lock

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

    def _forward(self) -> None:
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            length = answer.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            upstream.close()
        split = urlsplit(self.path)
        exchange = Exchange(
            method=self.command,
            path=unquote(split.path),
            query=split.query,
            copy_source=unquote(self.headers.get("x-amz-copy-source", "")),
            sent=len(body),
            received=len(data),
        )
        with self.lock:
            self.record.append(exchange)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


@dataclass
class RecordingProxy:
    url: str
    record: list[Exchange]
    httpd: ThreadingHTTPServer

    def clear(self) -> None:
        self.record.clear()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def start_recording_proxy(upstream_url: str) -> RecordingProxy:
    target = urlsplit(upstream_url)
    record: list[Exchange] = []
    handler = type(
        "RecordingHandler",
        (_Handler,),
        {"upstream": (target.hostname, target.port), "record": record, "lock": threading.Lock()},
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(
        target=httpd.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="s3-recording-proxy",
        daemon=True,
    ).start()
    host, port = httpd.server_address[:2]
    return RecordingProxy(url=f"http://{host}:{port}", record=record, httpd=httpd)
