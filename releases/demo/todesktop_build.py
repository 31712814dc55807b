"""A realistic ToDesktop build for the fake origin: file names, generated contents, manifests.

`FakeBuild` describes a build for Windows (nsis, nsis-web and its `.7z` packages), mac (dmg,
zip, the universal "Mac Installer") and Linux (AppImage, deb, rpm), with td JSON manifests and
electron-builder yml twins carrying correct sha256/sha512/size. Contents are generated from the
file name, block by block, so any size streams without being held in memory. Blockmaps are
real ones: gzip-compressed JSON in electron-builder's shape, listing the artifact's blocks.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

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
            sha256, sha512, blocks = hashlib.sha256(), hashlib.sha512(), []
            for chunk in self.chunks():  # one chunk per BLOCK: the blockmap's blocks
                sha256.update(chunk)
                sha512.update(chunk)
                blocks.append((base64.b64encode(hashlib.md5(chunk).digest()).decode(), len(chunk)))
            cached = self._hashes = {
                "sha256": sha256.hexdigest(),
                "sha512_hex": sha512.hexdigest(),
                "sha512": base64.b64encode(sha512.digest()).decode(),
                "blocks": blocks,
            }
        return cached


@dataclass
class FakeBlockmap:
    """`<artifact>.blockmap` as electron-builder writes it (fixed-size blocks here; the real
    one cuts content-defined blocks, which only changes which blocks a client re-fetches)."""

    name: str
    artifact: FakeFile

    @property
    def body(self) -> bytes:
        cached = getattr(self, "_body", None)
        if cached is None:
            blocks = self.artifact.hashes["blocks"]
            document = {
                "version": "2",
                "files": [
                    {
                        "name": "file",
                        "offset": 0,
                        "checksums": [checksum for checksum, _ in blocks],
                        "sizes": [size for _, size in blocks],
                    }
                ],
            }
            cached = self._body = gzip.compress(json.dumps(document).encode(), mtime=0)
        return cached

    @property
    def size(self) -> int:
        return len(self.body)

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        yield self.body[start:end]

    def content(self) -> bytes:
        return self.body

    @property
    def hashes(self) -> dict:
        digest = hashlib.sha512(self.body).digest()
        return {
            "sha256": hashlib.sha256(self.body).hexdigest(),
            "sha512_hex": digest.hex(),
            "sha512": base64.b64encode(digest).decode(),
        }


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
        self.files: dict[str, FakeFile | FakeBlockmap] = {}
        for kinds in self.layout.values():
            for arches in kinds.values():
                for name in arches.values():
                    self.files[name] = FakeFile(name, self.sizes.get(name, self.size))
        for name in self.blockmapped:
            blockmap = f"{name}.blockmap"
            self.files[blockmap] = FakeBlockmap(blockmap, self.files[name])

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
