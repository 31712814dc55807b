"""RFC 9110 file serving through the feed, on both bucket backends: ranges, conditionals, HEAD."""

from __future__ import annotations

import re

import pytest
from django.utils.http import http_date

from tests.cdn_support import feed_url, parse_multipart, publish

BODY = bytes(range(256)) * 40  # 10240 bytes
NAME = "My App 1.0.0 - Build b100-x64.dmg"
URL = feed_url(NAME)


@pytest.fixture
def served(production):
    publish(production, files={NAME: BODY, "empty.zip": b""}, builds=[], releases={})
    return production.head(NAME)


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_a_get_returns_the_whole_file_with_its_headers(client, served):
    response = client.get(URL)
    assert response.status_code == 200
    assert content(response) == BODY
    assert response["Content-Length"] == str(len(BODY))
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == served.http_etag
    assert response["Last-Modified"] == http_date(served.last_modified.timestamp())
    assert response["Content-Type"] == "application/x-apple-diskimage"
    assert response["Content-Disposition"] == 'attachment; filename="My App 1.0.0 - x64.dmg"'
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"


def test_a_head_returns_the_same_headers_and_no_body(client, served):
    response = client.head(URL)
    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Length"] == str(len(BODY))
    assert response["ETag"] == served.http_etag
    assert response["Accept-Ranges"] == "bytes"


def test_a_missing_object_is_a_404(client, served):
    response = client.get(feed_url("nope.dmg"))
    assert response.status_code == 404
    assert client.head(feed_url("nope.dmg")).status_code == 404


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=100-100", 100, 101),
        ("bytes=-10", 10230, 10240),
        ("bytes=10000-", 10000, 10240),
        ("bytes=10000-999999", 10000, 10240),
        ("bytes=-999999", 0, 10240),
        ("bytes=0-1,99999-", 0, 2),  # unsatisfiable members of a set are dropped
    ],
)
def test_a_single_range_is_a_206_with_content_range(client, served, header, start, stop):
    response = client.get(URL, HTTP_RANGE=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{stop - 1}/{len(BODY)}"
    assert response["Content-Length"] == str(stop - start)
    assert content(response) == BODY[start:stop]
    assert response["ETag"] == served.http_etag


def test_a_head_with_a_range_announces_the_part_without_a_body(client, served):
    response = client.head(URL, HTTP_RANGE="bytes=0-9")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 0-9/{len(BODY)}"
    assert response["Content-Length"] == "10"
    assert response.content == b""


def test_several_ranges_are_a_multipart_byteranges_206(client, served):
    response = client.get(URL, HTTP_RANGE="bytes=0-1, 5-6,100-199,-3")
    assert response.status_code == 206
    assert re.fullmatch(r"multipart/byteranges; boundary=[0-9a-f]{32}", response["Content-Type"])
    assert "Content-Range" not in response
    parts = parse_multipart(response)
    size = len(BODY)
    assert parts == [
        (f"bytes 0-1/{size}", BODY[0:2]),
        (f"bytes 5-6/{size}", BODY[5:7]),
        (f"bytes 100-199/{size}", BODY[100:200]),
        (f"bytes {size - 3}-{size - 1}/{size}", BODY[-3:]),
    ]


def test_each_part_of_a_multipart_answer_names_the_object_type(client, served):
    raw = content(client.get(URL, HTTP_RANGE="bytes=0-0,2-2"))
    assert raw.count(b"Content-Type: application/x-apple-diskimage\r\n") == 2


def test_a_head_with_several_ranges_has_the_multipart_length_and_no_body(client, served):
    get = client.get(URL, HTTP_RANGE="bytes=0-1,5-6")
    head = client.head(URL, HTTP_RANGE="bytes=0-1,5-6")
    assert head.status_code == 206
    assert head.content == b""
    assert head["Content-Length"] == get["Content-Length"]


@pytest.mark.parametrize(
    "header", ["bytes=10240-", "bytes=99999-100000", "bytes=10240-10300,20000-20001"]
)
def test_an_unsatisfiable_range_is_a_416(client, served, header):
    response = client.get(URL, HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(BODY)}"


@pytest.mark.parametrize(
    "header",
    ["bytes=5-1", "items=0-1", "bytes=abc", "bytes=", "bytes=-0", "0-1", "bytes=5-9,0-1"],
)
def test_an_invalid_range_header_is_ignored(client, served, header):
    response = client.get(URL, HTTP_RANGE=header)
    assert response.status_code == 200
    assert content(response) == BODY


def test_more_than_a_thousand_ranges_are_ignored(client, served):
    many = "bytes=" + ",".join(f"{i * 2}-{i * 2}" for i in range(1001))
    assert client.get(URL, HTTP_RANGE=many).status_code == 200
    allowed = "bytes=" + ",".join(f"{i * 2}-{i * 2}" for i in range(1000))
    assert client.get(URL, HTTP_RANGE=allowed).status_code == 206


def test_a_range_on_an_empty_file_is_ignored(client, served):
    response = client.get(feed_url("empty.zip"), HTTP_RANGE="bytes=-5")
    assert response.status_code == 200
    assert response["Content-Length"] == "0"
    assert content(response) == b""


@pytest.mark.parametrize(
    "header", ['"{etag}"', 'W/"{etag}"', '"other", "{etag}"', "*", '"other",W/"{etag}"']
)
def test_if_none_match_answers_304_with_validators(client, served, header):
    value = header.format(etag=served.etag)
    response = client.get(URL, HTTP_IF_NONE_MATCH=value)
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == served.http_etag
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["Last-Modified"] == http_date(served.last_modified.timestamp())
    assert client.head(URL, HTTP_IF_NONE_MATCH=value).status_code == 304


def test_if_none_match_that_differs_serves_the_file(client, served):
    assert client.get(URL, HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_if_modified_since_answers_304_unless_modified(client, served):
    modified = served.last_modified.timestamp()
    assert client.get(URL, HTTP_IF_MODIFIED_SINCE=http_date(modified)).status_code == 304
    assert client.get(URL, HTTP_IF_MODIFIED_SINCE=http_date(modified + 60)).status_code == 304
    assert client.get(URL, HTTP_IF_MODIFIED_SINCE=http_date(modified - 60)).status_code == 200
    assert client.get(URL, HTTP_IF_MODIFIED_SINCE="not a date").status_code == 200


def test_if_none_match_takes_precedence_over_if_modified_since(client, served):
    response = client.get(
        URL,
        HTTP_IF_NONE_MATCH='"other"',
        HTTP_IF_MODIFIED_SINCE=http_date(served.last_modified.timestamp() + 60),
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("header", "status"),
    [('"{etag}"', 200), ("*", 200), ('"a", "{etag}"', 200), ('"other"', 412), ('W/"{etag}"', 412)],
)
def test_if_match_uses_strong_comparison(client, served, header, status):
    response = client.get(URL, HTTP_IF_MATCH=header.format(etag=served.etag))
    assert response.status_code == status


def test_if_unmodified_since_fails_with_412_when_modified_after(client, served):
    modified = served.last_modified.timestamp()
    assert client.get(URL, HTTP_IF_UNMODIFIED_SINCE=http_date(modified - 60)).status_code == 412
    assert client.get(URL, HTTP_IF_UNMODIFIED_SINCE=http_date(modified)).status_code == 200
    # If-Match, when present, replaces If-Unmodified-Since (RFC 9110 §13.2.2).
    response = client.get(
        URL, HTTP_IF_MATCH=served.http_etag, HTTP_IF_UNMODIFIED_SINCE=http_date(modified - 60)
    )
    assert response.status_code == 200


def test_preconditions_are_checked_before_ranges(client, served):
    response = client.get(URL, HTTP_RANGE="bytes=0-1", HTTP_IF_MATCH='"other"')
    assert response.status_code == 412
    response = client.get(URL, HTTP_RANGE="bytes=0-1", HTTP_IF_NONE_MATCH=served.http_etag)
    assert response.status_code == 304


def test_if_range_with_the_current_strong_etag_honours_the_range(client, served):
    response = client.get(URL, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=served.http_etag)
    assert response.status_code == 206
    assert content(response) == BODY[:10]


@pytest.mark.parametrize("header", ['"other"', 'W/"{etag}"', "not a validator"])
def test_if_range_that_does_not_match_strongly_sends_the_whole_file(client, served, header):
    response = client.get(
        URL, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=header.format(etag=served.etag)
    )
    assert response.status_code == 200
    assert content(response) == BODY


def test_if_range_with_a_date_needs_the_exact_last_modified(client, served):
    modified = served.last_modified.timestamp()
    exact = client.get(URL, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=http_date(modified))
    assert exact.status_code == 206
    later = client.get(URL, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=http_date(modified + 60))
    assert later.status_code == 200
