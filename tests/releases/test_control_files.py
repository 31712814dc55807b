"""Production's control files, read, parsed and written in one place (releases.control_files)."""

from __future__ import annotations

import pytest

from releases.control_files import (
    BUILDS_FILE,
    RELEASES_FILE,
    ControlFileInvalid,
    builds_ids,
    control_bytes,
    control_parse,
    control_parse_or_empty,
    control_read,
    control_text,
    rules_build_ids,
)
from releases.integrations import buckets


def test_every_writer_gets_the_same_bytes_two_space_indent_unicode_kept_and_a_final_newline():
    entry = {"id": "b1", "version": "1.0.0", "note": "café"}
    expected = '[\n  {\n    "id": "b1",\n    "version": "1.0.0",\n    "note": "café"\n  }\n]\n'
    assert control_text([entry]) == expected
    assert control_bytes([entry]) == expected.encode("utf-8")
    assert control_bytes({}) == b"{}\n" and control_bytes([]) == b"[]\n"


@pytest.mark.parametrize(
    "raw, not_json, found",
    [
        (b"{not json", True, ""),
        (b"\xff\xfe", True, ""),  # not UTF-8
        (b"[" * 200_000 + b"]" * 200_000, True, ""),  # past the parser's recursion limit
        (b'{"latestReleaseBuildId": "b1"}', False, "dict"),
    ],
)
def test_a_builds_file_that_is_not_a_json_array_is_one_error(raw, not_json, found):
    with pytest.raises(ControlFileInvalid) as caught:
        control_parse(BUILDS_FILE, raw)
    assert (caught.value.not_json, caught.value.found, caught.value.key) == (
        not_json,
        found,
        BUILDS_FILE,
    )
    assert control_parse_or_empty(BUILDS_FILE, raw) == []


def test_a_rules_file_must_be_an_object():
    assert control_parse(RELEASES_FILE, b'{"a": 1}') == {"a": 1}
    with pytest.raises(ControlFileInvalid, match="not a JSON object"):
        control_parse(RELEASES_FILE, b"[]")
    assert control_parse_or_empty(RELEASES_FILE, None) == {}
    assert control_parse_or_empty(RELEASES_FILE, b"") == {}


def test_builds_ids_are_listed_once_in_order_and_must_be_build_ids():
    raw = b'[{"id": "b2"}, {"id": "b1"}, {"id": "b2"}]'
    assert builds_ids(raw) == ["b2", "b1"]
    assert builds_ids(None) == [] and builds_ids(b"") == []
    for bad in (
        b'[{"id": "b1\\n"}]',
        b'[{"id": "../x"}]',
        b'[{"id": 7}]',
        b'[{"v": 1}]',
        b'["b1"]',
    ):
        with pytest.raises(ControlFileInvalid):
            builds_ids(bad)


def test_the_rules_name_the_latest_build_and_every_redirections_build():
    rules = {
        "latestReleaseBuildId": "b1",
        "releaseRedirections": [
            {"rule": "buildByPlatform", "buildId": "b2", "platforms": ["mac"]},
            {"rule": "appByIp", "feedUrl": "https://x", "ipList": []},
            "not a rule",
            {"rule": "build", "buildId": ""},
        ],
    }
    assert rules_build_ids(rules) == {"b1", "b2"}
    assert rules_build_ids({"releaseRedirections": 5}) == set()
    assert rules_build_ids([]) == set()


def test_a_missing_file_reads_as_none_on_either_backend(any_buckets):
    production = buckets.production(role="promoter")
    assert control_read(production, RELEASES_FILE) is None
    production.write_bytes(RELEASES_FILE, b"{}\n")
    assert control_read(production, RELEASES_FILE) == b"{}\n"
