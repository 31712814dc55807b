"""Byte ranges (RFC 9110 §14): parse with werkzeug, then apply to a representation's length."""

from __future__ import annotations

from werkzeug.http import parse_range_header

# electron-updater asks for at most 1000 ranges per request (multipleRangeDownloader); beyond a
# cap the Range header is ignored, as RFC 9110 §14.2 allows, so a request cannot make us emit
# millions of tiny parts.
MAX_RANGES = 1000


class Unsatisfiable(Exception):
    """No range of the set overlaps the representation (→ 416)."""


def ranges_for(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """[(start, stop_exclusive), …] to serve, None to ignore the header (→ 200).

    Invalid syntax, other units, too many ranges and empty files are ignored (RFC 9110 §14.2:
    a server MAY ignore Range). Ranges that start past the end are dropped; if none is left
    the set is unsatisfiable. werkzeug's parser also refuses overlapping or unordered ranges.
    """
    parsed = parse_range_header(header) if header else None
    if parsed is None or parsed.units != "bytes" or size == 0:
        return None
    if len(parsed.ranges) > MAX_RANGES:
        return None
    result = []
    for start, stop in parsed.ranges:
        if start < 0:  # suffix range: the last -start bytes
            start, stop = max(size + start, 0), size
        elif start >= size:
            continue
        stop = size if stop is None else min(stop, size)
        result.append((start, stop))
    if not result:
        raise Unsatisfiable
    return result


# Remote buckets (S3): one GET per group of nearby ranges instead of one per range, since
# electron-updater's differential download asks for up to 1000 small ranges per request.
COALESCE_GAP = 256 * 1024
COALESCE_SPAN = 16 * 1024 * 1024


def coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """Group ascending ranges: [(group_start, group_stop, [ranges…]), …]."""
    groups: list[tuple[int, int, list[tuple[int, int]]]] = []
    for start, stop in ranges:
        if groups:
            group_start, group_stop, members = groups[-1]
            near = 0 <= start - group_stop <= COALESCE_GAP
            if near and stop - group_start <= COALESCE_SPAN:
                members.append((start, stop))
                groups[-1] = (group_start, stop, members)
                continue
        groups.append((start, stop, [(start, stop)]))
    return groups


class ChunkCursor:
    """Reads exact byte counts from an iterator of chunks, holding at most one chunk."""

    def __init__(self, chunks, position: int) -> None:
        self._chunks, self._buffer, self.position = iter(chunks), b"", position

    def take(self, size: int):
        """Yield the next `size` bytes in pieces."""
        while size > 0:
            if not self._buffer:
                self._buffer = next(self._chunks, b"")
                if not self._buffer:
                    raise OSError("object ended before the requested range")
            piece, self._buffer = self._buffer[:size], self._buffer[size:]
            size -= len(piece)
            self.position += len(piece)
            yield piece

    def skip_to(self, position: int) -> None:
        for _ in self.take(position - self.position):
            pass
