"""The fake ToDesktop origin of the tests: `releases.demo.todesktop_origin` (what `manage.py
demo` serves) plus what only tests need.

- a request log: per request, its method, name, range, status and the bytes of body actually
  sent (`log`, `requested(name)`), and the most bodies ever sent at once (`max_in_flight`);
- fault switches: `fail` (n × 500), `drop` (connection closed half-way through a body),
  `slow`, `hold` (a download that stays in flight until released), `corrupt` (one byte
  flipped);
- hostile answers: `redirect` (a 30x to any URL), `stream` (any body, of any length, with a
  chosen Content-Length or none at all: chunked) and `serve` (other bytes for a name, e.g. a
  hostile manifest).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from releases.demo import todesktop_origin as demo
from releases.demo.todesktop_build import REAL_HOST, FakeBuild, FakeFile

__all__ = ["REAL_HOST", "FakeBuild", "FakeFile", "FakeOrigin", "LoggedRequest", "start_origin"]


@dataclass
class LoggedRequest:
    method: str
    name: str
    range: str | None
    status: int
    sent: int = 0  # bytes of body sent (a client that stops reading stops this short)
    path: str = ""


class _Handler(demo.OriginHandler):
    origin: FakeOrigin
    entry: LoggedRequest

    def serve(self, *, head: bool) -> None:
        origin = self.origin
        name = self.requested_name()
        status = self._status(name)
        entry = LoggedRequest(
            self.command, name, self.headers.get("Range"), status, path=self.requested_path()
        )
        self.entry = entry
        with origin.lock:
            origin.log.append(entry)
        if name in origin._redirects and status == 200:
            return self._redirect(entry, *origin._redirects[name])
        if status != 200:
            return self.empty(status)
        if name in origin._streams:
            return self._stream(entry, *origin._streams[name], head=head)
        super().serve(head=head)

    def _status(self, name: str) -> int:
        origin = self.origin
        if not name or (
            name not in origin._redirects
            and name not in origin._streams
            and origin.source(name) is None
        ):
            return 404
        failure = origin._take(origin._fail, name)
        return failure[0] if failure else 200

    def send_body(self, name: str, body: bytes | None, start: int, end: int) -> None:
        origin = self.origin
        with origin.lock:
            origin.in_flight += 1
            origin.max_in_flight = max(origin.max_in_flight, origin.in_flight)
        try:
            self._body(self.entry, name, body, start, end)
        finally:
            with origin.lock:
                origin.in_flight -= 1

    def _body(self, entry: LoggedRequest, name: str, body, start: int, end: int) -> None:
        origin = self.origin
        drop = origin._take(origin._drop, name)
        limit = None
        if drop is not None:
            limit = drop[0] if drop[0] is not None else (end - start) // 2
        corrupt_at = origin._corrupt.get(name)
        delay = origin._slow.get(name, 0.0)
        hold = origin._holds.get(name)
        sent = 0
        position = start
        for chunk in self.chunks(name, body, start, end):
            while hold is not None and not hold.is_set() and len(chunk) > 1:
                self.wfile.write(chunk[:1])  # (an error here ends the handler, as a reset would)
                self.wfile.flush()
                chunk, sent, position = chunk[1:], sent + 1, position + 1
                entry.sent = sent
                hold.wait(0.5)
            if delay:
                time.sleep(delay)
            if corrupt_at is not None and position <= corrupt_at < position + len(chunk):
                index = corrupt_at - position
                chunk = chunk[:index] + bytes([chunk[index] ^ 0xFF]) + chunk[index + 1 :]
            if limit is not None and sent + len(chunk) >= limit:
                self.wfile.write(chunk[: max(limit - sent, 0)])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # a dropped connection half-way through the body
                return
            try:
                self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return
            sent += len(chunk)
            position += len(chunk)
            entry.sent = sent

    def _redirect(self, entry: LoggedRequest, status: int, location: str) -> None:
        entry.status = status
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _stream(self, entry: LoggedRequest, body, length: int | None, *, head: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if head:
            return
        try:
            for chunk in body():
                frame = (
                    f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if length is None else chunk
                )
                self.wfile.write(frame)
                entry.sent += len(chunk)
            if length is None:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what a size cap does
        self.close_connection = True


class FakeOrigin(demo.FakeOrigin):
    handler = _Handler

    def __init__(self, build: FakeBuild, *more: FakeBuild) -> None:
        # Set before the server starts answering.
        self.overrides: dict[str, bytes] = {}
        self.log: list[LoggedRequest] = []
        self.in_flight = 0  # bodies being sent right now
        self.max_in_flight = 0  # the most bodies ever sent at once (bounded pools show here)
        self.lock = threading.Lock()
        self._fail: dict[str, list] = {}
        self._drop: dict[str, list] = {}
        self._slow: dict[str, float] = {}
        self._holds: dict[str, threading.Event] = {}
        self._corrupt: dict[str, int] = {}
        self._redirects: dict[str, tuple[int, str]] = {}
        self._streams: dict[str, tuple[Callable[[], Iterator[bytes]], int | None]] = {}
        super().__init__(build, *more)

    def source(self, name: str) -> tuple[bytes | None, int] | None:
        if name in self.overrides:
            return self.overrides[name], len(self.overrides[name])
        return super().source(name)

    # --- fault switches ---------------------------------------------------------------------
    def fail(self, name: str, *, times: int = 1, status: int = 500) -> None:
        """The next `times` requests for `name` get `status`."""
        self._fail[name] = [times, status]

    def drop(self, name: str, *, after: int | None = None, times: int = 1) -> None:
        """The next `times` bodies of `name` stop after `after` bytes (default: half)."""
        self._drop[name] = [times, after]

    def slow(self, name: str, *, seconds_per_block: float) -> None:
        """Sleep this long before every 64 KiB block of `name`."""
        self._slow[name] = seconds_per_block

    def hold(self, name: str) -> threading.Event:
        """Trickle `name` one byte every half second until the returned event is set (a download
        that stays in flight for as long as a test needs, without tripping a read timeout)."""
        self._holds[name] = threading.Event()
        return self._holds[name]

    def corrupt(self, name: str, *, offset: int | None = None) -> None:
        """Serve `name` with one byte flipped (the manifests keep the true hashes)."""
        self._corrupt[name] = self.files[name].size // 2 if offset is None else offset

    def redirect(self, name: str, location: str, *, status: int = 302) -> None:
        """Answer `name` with `status` and `Location: location` (any URL, any host)."""
        self._redirects[name] = (status, location)

    def stream(
        self, name: str, body: Callable[[], Iterator[bytes]], *, length: int | None = None
    ) -> None:
        """Serve `body()` for `name`, declaring `length` as Content-Length (which may lie), or
        none at all (chunked): a body of unknown size, up to endless."""
        self._streams[name] = (body, length)

    def serve(self, name: str, body: bytes) -> None:
        """Serve `body` for `name` instead of the generated content (e.g. a hostile manifest)."""
        self.overrides[name] = body

    def requested(self, name: str) -> list[LoggedRequest]:
        return [entry for entry in self.log if entry.name == name]

    def _take(self, switches: dict, name: str) -> tuple | None:
        """Use one shot of a switch: (value,) while it lasts, else None."""
        with self.lock:
            entry = switches.get(name)
            if not entry or entry[0] <= 0:
                return None
            entry[0] -= 1
            return (entry[1],)


def start_origin(build: FakeBuild | None = None, *more: FakeBuild) -> FakeOrigin:
    return FakeOrigin(build or FakeBuild(), *more)
