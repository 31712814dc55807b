"""A blockmap is checked as what it is while it streams: gzip-compressed JSON of
electron-builder's shape (README, "Downloads from ToDesktop").

electron-updater downloads `<file>.blockmap` of the installed and of the new version and
fetches only the blocks that changed. The format (builder-util-runtime's `BlockMap`):

    {"version": "2",
     "files": [{"name": "file", "offset": 0, "checksums": ["<base64>", …], "sizes": [N, …]}]}

No manifest gives a hash for a blockmap, so its shape is the check: a download host cannot
stage arbitrary bytes (a credentials file, an HTML page) under a blockmap's name. The
compressed stream and the JSON it inflates to are both capped at `MAX_BLOCKMAP_BYTES`, so a
gzip bomb stops at the cap, and at most that much JSON is ever held in memory.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from releases.validation import JsonTooDeep, json_load_bounded

GZIP_WINDOW = 16 + zlib.MAX_WBITS  # a gzip header and trailer around a deflate stream
VERSION = re.compile(r"[0-9]{1,3}")
MAX_DEPTH = 8  # the format nests three levels deep


class BlockmapInvalid(ValueError):
    """Not an electron-builder blockmap; the message says why."""


def blockmap_checked(chunks: Iterable[bytes], *, limit: int) -> Iterator[bytes]:
    """Pass `chunks` through unchanged; raise BlockmapInvalid before the last one is
    released when they are not a blockmap (so a bucket write of them never completes)."""
    inflater = zlib.decompressobj(GZIP_WINDOW)
    inflated = bytearray()
    for chunk in chunks:
        if inflater.eof:
            raise BlockmapInvalid("data after the end of the gzip stream")
        try:
            inflated += inflater.decompress(chunk, limit + 1 - len(inflated))
        except zlib.error as exc:
            raise BlockmapInvalid(f"not gzip data ({exc})") from None
        if len(inflated) > limit or inflater.unconsumed_tail:
            raise BlockmapInvalid(f"inflates to more than MAX_BLOCKMAP_BYTES ({limit} bytes)")
        if not inflater.eof:
            yield chunk
            continue
        if inflater.unused_data:
            raise BlockmapInvalid("data after the end of the gzip stream")
        blockmap_shape_check(bytes(inflated))
        yield chunk
    if not inflater.eof:
        raise BlockmapInvalid("the gzip stream is truncated")


def blockmap_shape_check(text: bytes) -> None:
    """Raise BlockmapInvalid unless `text` is JSON of electron-builder's blockmap shape."""
    try:
        data = json_load_bounded(text, max_depth=MAX_DEPTH)
    except JsonTooDeep as exc:
        raise BlockmapInvalid(str(exc)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BlockmapInvalid(f"not JSON ({str(exc)[:100]})") from None
    if not isinstance(data, dict):
        raise BlockmapInvalid("not a JSON object")
    version = data.get("version")
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        raise BlockmapInvalid(f"version {json.dumps(version)[:20]} is not a version string")
    files = data.get("files")
    if not isinstance(files, list) or not files:
        raise BlockmapInvalid("files is not a non-empty list")
    for index, entry in enumerate(files):
        problem = _file_problem(entry)
        if problem:
            raise BlockmapInvalid(f"files[{index}]: {problem}")


def _file_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "not an object"
    if not isinstance(entry.get("name"), str):
        return "name is not a string"
    if not _count(entry.get("offset")):
        return "offset is not a non-negative integer"
    checksums, sizes = entry.get("checksums"), entry.get("sizes")
    if not isinstance(checksums, list) or not all(isinstance(c, str) for c in checksums):
        return "checksums is not a list of strings"
    if not isinstance(sizes, list) or not all(_count(size) for size in sizes):
        return "sizes is not a list of non-negative integers"
    if len(checksums) != len(sizes):
        return f"{len(checksums)} checksums for {len(sizes)} sizes"
    return None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
