"""The feed and the download links skip Django's per-request signals (they never touch the
database); every other path keeps them, and a fast-lane response still closes its file."""

from __future__ import annotations

import os

import pytest
from django.core.signals import request_finished, request_started
from django.test import RequestFactory

from releases.integrations import buckets
from selfhosted.wsgi import application
from tests.cdn_support import publish


@pytest.fixture
def signals_seen():
    seen: list[str] = []

    def started(**kwargs):
        seen.append("started")

    def finished(**kwargs):
        seen.append("finished")

    request_started.connect(started)
    request_finished.connect(finished)
    yield seen
    request_started.disconnect(started)
    request_finished.disconnect(finished)


def call(path: str, **headers: str) -> tuple[str, bytes]:
    environ = RequestFactory().get("/", **headers).environ
    environ["PATH_INFO"] = path
    answer: dict = {}
    body = application(environ, lambda status, *_: answer.update(status=status))
    try:
        data = b"".join(body)
    finally:
        body.close()
    return answer["status"], data


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("path", ["/update/App-1.0.0-build-b1-x64.exe", "/download/mac"])
def test_the_fast_lane_sends_no_request_signals(db, fs_buckets, signals_seen, path):
    publish(
        buckets.production(role="promoter"),
        files={"App-1.0.0-build-b1-x64.exe": b"x" * 200_000},
    )
    call(path, HTTP_USER_AGENT="curl/8")
    assert signals_seen == []


def test_other_paths_keep_them(db, signals_seen):
    call("/healthz")
    assert signals_seen == ["started", "finished"]


def test_a_fast_lane_file_is_closed_after_the_answer(db, fs_buckets):

    publish(buckets.production(role="promoter"), files={"big-1.0.0.bin": b"y" * 300_000})
    call("/update/big-1.0.0.bin")  # warm imports and caches
    before = open_files()
    for _ in range(20):
        status, data = call("/update/big-1.0.0.bin")
        assert (status, len(data)) == ("200 OK", 300_000)
    assert open_files() == before
