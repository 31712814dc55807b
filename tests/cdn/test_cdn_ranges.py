"""Range helpers: parsing against a length, grouping nearby ranges for remote buckets."""

from __future__ import annotations

import os

import pytest

from cdn.ranges import COALESCE_GAP, ChunkCursor, Unsatisfiable, coalesce, ranges_for
from tests.cdn_support import feed_url, parse_multipart, publish


def test_ranges_are_clamped_to_the_length():
    assert ranges_for("bytes=0-4,8-100,-3", 10) == [(0, 5), (8, 10), (7, 10)]


def test_a_set_with_no_satisfiable_range_is_unsatisfiable():
    with pytest.raises(Unsatisfiable):
        ranges_for("bytes=10-20", 10)


def test_nearby_ranges_share_one_read_and_distant_ones_do_not():
    far = 10 + COALESCE_GAP + 1
    groups = coalesce([(0, 5), (8, 10), (far, far + 2)])
    assert groups == [(0, 10, [(0, 5), (8, 10)]), (far, far + 2, [(far, far + 2)])]


def test_a_cursor_reads_exact_slices_across_chunk_boundaries():
    cursor = ChunkCursor([b"abc", b"defg", b"hij"], position=100)
    cursor.skip_to(102)
    assert b"".join(cursor.take(4)) == b"cdef"
    cursor.skip_to(108)
    assert b"".join(cursor.take(2)) == b"ij"
    with pytest.raises(OSError):
        list(cursor.take(1))


def test_a_multi_range_answer_is_exact_for_near_and_far_ranges(client, production):
    data = os.urandom(COALESCE_GAP * 3)
    publish(production, files={"big.bin": data}, builds=[], releases={})
    header = f"bytes=0-9,20-29,{COALESCE_GAP * 2}-{COALESCE_GAP * 2 + 99},-7"
    response = client.get(feed_url("big.bin"), HTTP_RANGE=header)
    assert response.status_code == 206
    size = len(data)
    assert parse_multipart(response) == [
        (f"bytes 0-9/{size}", data[0:10]),
        (f"bytes 20-29/{size}", data[20:30]),
        (
            f"bytes {COALESCE_GAP * 2}-{COALESCE_GAP * 2 + 99}/{size}",
            data[COALESCE_GAP * 2 :][:100],
        ),
        (f"bytes {size - 7}-{size - 1}/{size}", data[-7:]),
    ]
