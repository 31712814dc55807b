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
