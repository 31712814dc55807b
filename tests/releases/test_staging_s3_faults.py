"""An S3 that answers 500 now and then: staging still ends with every file staged and verified.

moto cannot be told to fail, so a tiny fault-injecting HTTP proxy sits between the staging code
and the moto server: it answers the first N writes (PUT) with S3's own 500 InternalError and
forwards everything else unchanged.
"""

from __future__ import annotations

import hashlib
import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from releases.integrations import buckets
from releases.models import Build, BuildStatus, ReleaseRequest
from releases.services.staging import build_stage
from tests.fakes.todesktop_origin import FakeBuild, start_origin

pytestmark = pytest.mark.django_db

S3_INTERNAL_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)


class FaultProxy:
    def __init__(self, upstream: str, *, fail_puts: int) -> None:
        self.upstream = urlsplit(upstream)
        self.fail_puts = fail_puts
        self.log: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        chunk = self.rfile.read(size)
                        self.rfile.readline()
                        if size == 0:
                            return data
                        data += chunk
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                with proxy.lock:
                    fail = self.command == "PUT" and proxy.fail_puts > 0
                    proxy.fail_puts -= 1 if fail else 0
                if fail:
                    self._answer(500, {"Content-Type": "application/xml"}, S3_INTERNAL_ERROR)
                else:
                    self._forward(body)

            def _forward(self, body: bytes) -> None:
                connection = http.client.HTTPConnection(
                    proxy.upstream.hostname, proxy.upstream.port, timeout=30
                )
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"
                }
                headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                skip = ("transfer-encoding", "connection")
                skip += ("content-length",) if self.command != "HEAD" else ()
                relayed = {k: v for k, v in answer.getheaders() if k.lower() not in skip}
                connection.close()
                self._answer(answer.status, relayed, data)

            def _answer(self, status: int, headers: dict, data: bytes) -> None:
                with proxy.lock:
                    proxy.log.append((self.command, self.path, status))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if self.command != "HEAD":  # a HEAD relays the object's own Content-Length
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def faulty_s3(s3_buckets, settings):
    proxy = FaultProxy(s3_buckets.url, fail_puts=3)
    settings.AWS_S3_ENDPOINT_URL = proxy.url
    buckets.reset()
    yield proxy
    proxy.stop()
    buckets.reset()


def test_s3_500s_are_retried_and_the_build_is_staged(faulty_s3, s3_buckets, settings):
    dmg = FakeBuild().layout["mac"]["dmg"]["x64"]
    # One file above the 8 MiB part size, so multipart uploads meet the faults too.
    fake = FakeBuild(platforms=("linux", "mac"), sizes={dmg: 9 * 1024 * 1024})
    origin = start_origin(fake)
    settings.TODESKTOP_DOWNLOAD_BASE_URL = origin.url
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    build = Build.objects.create(build_id=fake.build_id, app_id=fake.app_id)
    release = ReleaseRequest.objects.create(build=build, payload={})
    try:
        build_stage(release_id=release.pk)
    finally:
        origin.stop()

    assert [status for _, _, status in faulty_s3.log].count(500) == 3
    build.refresh_from_db()
    assert build.status in (BuildStatus.STAGED, BuildStatus.IN_REVIEW)
    client = s3_buckets.client()  # straight to moto, not through the proxy
    listed = client.list_objects_v2(Bucket=settings.STAGING_BUCKET, Prefix=f"{fake.build_id}/")
    keys = {item["Key"].split("/", 1)[1] for item in listed["Contents"]}
    assert keys == set(fake.documents()) | set(fake.files)
    body = client.get_object(Bucket=settings.STAGING_BUCKET, Key=f"{fake.build_id}/{dmg}")
    assert hashlib.sha256(body["Body"].read()).hexdigest() == fake.files[dmg].hashes["sha256"]
    assert build.files.get(name=dmg).verification == "verified"
