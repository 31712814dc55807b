"""A response's headers and its first (small) body write leave in one send
(selfhosted/wire.py); everything else is sent as gunicorn sends it."""

from __future__ import annotations

from types import SimpleNamespace

from gunicorn.config import Config
from gunicorn.http import wsgi

from selfhosted.wire import GATHER_LIMIT, GatheringResponse


class RecordingSocket:
    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))


def response(method: str = "GET", version=(1, 1)):
    request = SimpleNamespace(
        method=method, version=version, headers=[], should_close=lambda: False, uri="/x"
    )
    sock = RecordingSocket()
    return GatheringResponse(request, sock, Config()), sock


def test_headers_and_a_manifest_go_out_in_one_send():
    resp, sock = response()
    resp.start_response("200 OK", [("Content-Type", "text/yaml"), ("Content-Length", "6")])
    resp.write(b"abcdef")
    assert len(sock.sends) == 1
    head, body = sock.sends[0].split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 6" in head
    assert body == b"abcdef" and resp.sent == 6


def test_later_writes_and_big_first_writes_are_sent_as_gunicorn_sends_them():
    resp, sock = response()
    resp.start_response("200 OK", [("Content-Length", str(GATHER_LIMIT + 5))])
    resp.write(b"x" * (GATHER_LIMIT + 1))
    resp.write(b"yyyy")
    assert len(sock.sends) == 3  # headers, then each write
    assert sock.sends[1:] == [b"x" * (GATHER_LIMIT + 1), b"yyyy"]


def test_head_sends_the_headers_alone_and_no_body():
    resp, sock = response("HEAD")
    resp.start_response("200 OK", [("Content-Length", "6")])
    resp.write(b"abcdef")
    assert len(sock.sends) == 1 and sock.sends[0].endswith(b"\r\n\r\n")


def test_a_chunked_body_keeps_its_framing():
    resp, sock = response()
    resp.start_response("200 OK", [("Content-Type", "text/plain")])
    resp.write(b"hello")
    resp.close()
    data = b"".join(sock.sends)
    assert b"Transfer-Encoding: chunked" in data
    assert data.endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert len(sock.sends) == 2  # headers with the first chunk, then the last chunk


def test_installed_gunicorn_builds_its_responses_with_it(monkeypatch):
    from selfhosted import wire

    monkeypatch.setattr(wsgi, "Response", wsgi.Response)  # undone after the test
    wire.install()
    assert wsgi.Response is GatheringResponse
