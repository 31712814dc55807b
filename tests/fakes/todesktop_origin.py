"""A fake ToDesktop download host: a real HTTP server on loopback serving a realistic build.

`FakeBuild` describes a build for Windows (nsis, nsis-web and its `.7z` packages), mac (dmg,
zip, the universal "Mac Installer") and Linux (AppImage, deb, rpm): td JSON manifests and
electron-builder yml twins with correct sha256/sha512/size, installer names with spaces,
blockmaps for some files and 404 for others. File contents are generated on the fly from the
name (any size, streamed, never held in memory).

`FakeOrigin` serves it at `<url>/<appId>/<name>` (GET and HEAD, `Range: bytes=N-[M]`) with
fault switches — `fail` (n × 500), `drop` (connection closed half-way through a body), `slow`,
`corrupt` (one byte flipped) — and a request log tests can inspect.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

import yaml

BLOCK = 64 * 1024
REAL_HOST = "https://download.todesktop.com"  # what real manifests say; never contacted


@dataclass
class FakeFile:
    name: str
    size: int

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes [start, end) of a deterministic content: a per-name random block, numbered."""
        end = self.size if end is None else min(end, self.size)
        base = random.Random(self.name).randbytes(BLOCK)
        position = start
        while position < end:
            index, within = divmod(position, BLOCK)
            block = struct.pack(">Q", index) + base[8:]
            piece = block[within : within + (end - position)]
            position += len(piece)
            yield piece

    def content(self) -> bytes:
        return b"".join(self.chunks())

    @property
    def hashes(self) -> dict:
        cached = getattr(self, "_hashes", None)
        if cached is None:
            sha256, sha512 = hashlib.sha256(), hashlib.sha512()
            for chunk in self.chunks():
                sha256.update(chunk)
                sha512.update(chunk)
            cached = self._hashes = {
                "sha256": sha256.hexdigest(),
                "sha512_hex": sha512.hexdigest(),
                "sha512": base64.b64encode(sha512.digest()).decode(),
            }
        return cached


@dataclass
class FakeBuild:
    app_id: str = "240808w4a9kky77"
    build_id: str = "250210vv2q75v93"
    version: str = "1.2.0"
    product: str = "My App"
    platforms: tuple[str, ...] = ("windows", "mac", "linux")
    size: int = 2048
    sizes: dict[str, int] = field(default_factory=dict)
    linux_yml: bool = True
    created_at: str = "2025-02-10T13:15:06Z"

    def __post_init__(self) -> None:
        self.layout = self._layout()
        self.files: dict[str, FakeFile] = {}
        for kinds in self.layout.values():
            for arches in kinds.values():
                for name in arches.values():
                    self.files[name] = FakeFile(name, self.sizes.get(name, self.size))
        for name in self.blockmapped:
            blockmap = f"{name}.blockmap"
            self.files[blockmap] = FakeFile(blockmap, self.sizes.get(blockmap, 300))

    def _layout(self) -> dict[str, dict[str, dict[str, str]]]:
        p, v, b = self.product, self.version, self.build_id
        slug = p.lower().replace(" ", "-")
        layout = {
            "windows": {
                "nsis": {
                    arch: f"{p} Setup {v} - Build {b}-{arch}.exe" for arch in ("x64", "arm64")
                },
                "nsis-web": {"x64": f"{p} Web Setup {v} - Build {b}.exe"},
                "nsis-web-7z": {
                    arch: f"{slug}-{v}-build-{b}-{arch}.nsis.7z" for arch in ("x64", "arm64")
                },
            },
            "mac": {
                "dmg": {arch: f"{p} {v} - Build {b}-{arch}.dmg" for arch in ("x64", "arm64")},
                "zip": {arch: f"{p}-{v}-build-{b}-{arch}-mac.zip" for arch in ("x64", "arm64")},
                "installer": {"universal": f"{p} Mac Installer {v} - Build {b}.dmg"},
            },
            "linux": {
                "appImage": {"x64": f"{p}-{v}-build-{b}-x86_64.AppImage"},
                "deb": {"x64": f"{slug}_{v}-build-{b}_amd64.deb"},
                "rpm": {"x64": f"{slug}-{v}-build-{b}.x86_64.rpm"},
            },
        }
        return {platform: layout[platform] for platform in self.platforms}

    @property
    def blockmapped(self) -> list[str]:
        """Files that have a blockmap on the origin (the others answer 404)."""
        kinds = {"nsis", "dmg", "zip", "appImage"}
        return [
            name
            for platform in self.layout.values()
            for kind, arches in platform.items()
            if kind in kinds
            for name in arches.values()
        ]

    @property
    def artifact_names(self) -> list[str]:
        return [n for kinds in self.layout.values() for a in kinds.values() for n in a.values()]

    def td_name(self, platform: str) -> str:
        part = {"windows": "", "mac": "mac-", "linux": "linux-"}[platform]
        return f"td-latest-{part}build-{self.build_id}.json"

    def yml_name(self, platform: str) -> str:
        return self.td_name(platform).replace("td-latest", "latest").replace(".json", ".yml")

    def url(self, name: str) -> str:
        return f"{REAL_HOST}/{self.app_id}/{quote(name)}"

    def td_manifest(self, platform: str) -> dict:
        artifacts: dict = {}
        for kind, arches in self.layout[platform].items():
            artifacts[kind] = {"ia32": None}
            for arch, name in arches.items():
                file = self.files[name]
                artifacts[kind][arch] = {
                    "url": self.url(name),
                    "sha256": file.hashes["sha256"],
                    "size": file.size,
                }
        artifacts["msi"] = None
        return {"version": self.version, "createdAt": self.created_at, "artifacts": artifacts}

    def yml_manifest(self, platform: str) -> dict:
        kinds = self.layout[platform]
        listed_kinds = {
            "windows": ("nsis", "nsis-web"),
            "mac": ("zip", "dmg"),
            "linux": ("appImage",),
        }
        listed = [name for kind in listed_kinds[platform] for name in kinds[kind].values()]
        files = [
            {
                "url": name,
                "sha512": self.files[name].hashes["sha512"],
                "size": self.files[name].size,
            }
            for name in listed
        ]
        data: dict = {"version": self.version, "files": files}
        data.update(path=listed[0], sha512=files[0]["sha512"])
        if platform == "windows":
            data["packages"] = {
                arch: {
                    "path": name,
                    "sha512": self.files[name].hashes["sha512"],
                    "size": self.files[name].size,
                }
                for arch, name in kinds["nsis-web-7z"].items()
            }
        data["releaseDate"] = self.created_at
        return data

    def documents(self) -> dict[str, bytes]:
        """The manifests by name (td JSON and yml twins)."""
        docs = {}
        for platform in self.platforms:
            docs[self.td_name(platform)] = json.dumps(self.td_manifest(platform)).encode()
            if platform != "linux" or self.linux_yml:
                yml = yaml.safe_dump(self.yml_manifest(platform), sort_keys=False)
                docs[self.yml_name(platform)] = yml.encode()
        return docs

    def all_names(self) -> set[str]:
        return set(self.documents()) | set(self.files)


@dataclass
class LoggedRequest:
    method: str
    name: str
    range: str | None
    status: int


class FakeOrigin:
    def __init__(self, build: FakeBuild) -> None:
        self.build = build
        self.documents = build.documents()
        self.overrides: dict[str, bytes] = {}
        self.log: list[LoggedRequest] = []
        self.lock = threading.Lock()
        self._fail: dict[str, list] = {}
        self._drop: dict[str, list] = {}
        self._slow: dict[str, float] = {}
        self._corrupt: dict[str, int] = {}
        origin = self

        class Handler(_Handler):
            pass

        Handler.origin = origin
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

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

    def corrupt(self, name: str, *, offset: int | None = None) -> None:
        """Serve `name` with one byte flipped (the manifests keep the true hashes)."""
        self._corrupt[name] = self.build.files[name].size // 2 if offset is None else offset

    def serve(self, name: str, body: bytes) -> None:
        """Serve `body` for `name` instead of the generated content (e.g. a hostile manifest)."""
        self.overrides[name] = body

    def requested(self, name: str) -> list[LoggedRequest]:
        return [entry for entry in self.log if entry.name == name]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _take(self, switches: dict, name: str) -> tuple | None:
        """Use one shot of a switch: (value,) while it lasts, else None."""
        with self.lock:
            entry = switches.get(name)
            if not entry or entry[0] <= 0:
                return None
            entry[0] -= 1
            return (entry[1],)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    origin: FakeOrigin

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        origin = self.origin
        prefix = f"/{origin.build.app_id}/"
        path = self.path.split("?", 1)[0]
        name = unquote(path[len(prefix) :]) if path.startswith(prefix) else ""
        status = self._status(name)
        with origin.lock:
            origin.log.append(LoggedRequest(self.command, name, self.headers.get("Range"), status))
        if status != 200:
            return self._empty(status)
        body, size = self._source(name)
        start, end = self._range(size)
        self.send_response(206 if (start, end) != (0, size) else 200)
        if (start, end) != (0, size):
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if not head:
            self._body(name, body, start, end)

    def _status(self, name: str) -> int:
        origin = self.origin
        if not name or (
            name not in origin.overrides
            and name not in origin.documents
            and name not in origin.build.files
        ):
            return 404
        failure = origin._take(origin._fail, name)
        return failure[0] if failure else 200

    def _source(self, name: str):
        origin = self.origin
        if name in origin.overrides:
            return origin.overrides[name], len(origin.overrides[name])
        if name in origin.documents:
            return origin.documents[name], len(origin.documents[name])
        return None, origin.build.files[name].size

    def _range(self, size: int) -> tuple[int, int]:
        header = self.headers.get("Range", "")
        if not header.startswith("bytes=") or "," in header:
            return 0, size
        first, _, last = header[6:].partition("-")
        if not first.isdigit() or int(first) >= size:
            return 0, size
        end = int(last) + 1 if last.isdigit() else size
        return int(first), min(end, size)

    def _chunks(self, name: str, body: bytes | None, start: int, end: int) -> Iterator[bytes]:
        if body is not None:
            for offset in range(start, end, BLOCK):
                yield body[offset : min(offset + BLOCK, end)]
            return
        yield from self.origin.build.files[name].chunks(start, end)

    def _body(self, name: str, body: bytes | None, start: int, end: int) -> None:
        origin = self.origin
        drop = origin._take(origin._drop, name)
        limit = None
        if drop is not None:
            limit = drop[0] if drop[0] is not None else (end - start) // 2
        corrupt_at = origin._corrupt.get(name)
        delay = origin._slow.get(name, 0.0)
        sent = 0
        position = start
        for chunk in self._chunks(name, body, start, end):
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

    def _empty(self, status: int) -> None:
        body = f"{status}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def start_origin(build: FakeBuild | None = None) -> FakeOrigin:
    return FakeOrigin(build or FakeBuild())
