"""The access log's cheaper logger (selfhosted/accesslog.py) writes, line for line, what
gunicorn's own logger writes, for the default format and for every kind of atom."""

from __future__ import annotations

import base64
import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn import glogging
from gunicorn.config import Config

from selfhosted.accesslog import AccessLogger

ROOT = Path(__file__).resolve().parents[2]

FORMATS = [
    Config().access_log_format,  # gunicorn's default: h l u t "r" s b "f" "a"
    "%(h)s %(m)s %(U)s?%(q)s %(H)s %(s)s %(B)s %(T)s %(D)s %(M)s %(L)s %(p)s %(nope)s",
    '"%({user-agent}i)s" "%({X-Missing}i)s" %({content-type}o)s %({ETAG}o)s %({raw_uri}e)s',
]


def request(**environ_extra):
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/update/latest-mac.yml?x=%22",
        "PATH_INFO": "/update/latest-mac.yml",
        "QUERY_STRING": "x=%22",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_USER_AGENT": 'electron-builder "quoted"',
        "HTTP_REFERER": "https://example.com/",
        **environ_extra,
    }
    headers = [
        ("USER-AGENT", environ["HTTP_USER_AGENT"]),
        ("X-DUPLICATE", "first"),
        ("X-DUPLICATE", "second"),
    ]
    return SimpleNamespace(headers=headers), environ


def response(sent):
    headers = [("Content-Type", "text/yaml"), ("ETag", '"abc-12"')]
    return SimpleNamespace(status="200 OK", headers=headers, sent=sent)


def lines(logger_class, log_format, tmp_path, cases) -> list[str]:
    path = tmp_path / f"{logger_class.__name__}.log"
    config = Config()
    config.set("accesslog", str(path))
    config.set("access_log_format", log_format)
    logger = logger_class(config)
    for req, environ, resp in cases:
        logger.access(resp, req, environ, datetime.timedelta(seconds=1, microseconds=2345))
    for handler in logger.access_log.handlers:
        handler.flush()
    return path.read_text().splitlines()


@pytest.mark.parametrize("log_format", FORMATS)
def test_each_line_is_the_line_gunicorn_writes(tmp_path, log_format):
    basic = "Basic " + base64.b64encode(b"alice:secret").decode()
    cases = []
    for extra, sent in [({}, 75), ({"HTTP_AUTHORIZATION": basic}, 0), ({}, None)]:
        req, environ = request(**extra)
        cases.append((req, environ, response(sent)))
    req, environ = request()
    del environ["HTTP_USER_AGENT"], environ["HTTP_REFERER"]
    cases.append((req, environ, response(12)))
    ours = lines(AccessLogger, log_format, tmp_path, cases)
    theirs = lines(glogging.Logger, log_format, tmp_path, cases)
    assert ours == theirs
    assert len(ours) == 4 and all(ours)


def test_the_default_line_reads_as_expected(tmp_path):
    req, environ = request()
    [line] = lines(AccessLogger, FORMATS[0], tmp_path, [(req, environ, response(75))])
    assert line.startswith("203.0.113.9 - - [")
    assert line.endswith(
        '"GET /update/latest-mac.yml?x=%22 HTTP/1.1" 200 75 "https://example.com/" '
        '"electron-builder \\"quoted\\""'
    )


def test_the_gunicorn_settings_use_it():
    settings: dict = {}
    exec((ROOT / "selfhosted" / "gunicorn.conf.py").read_text(), settings)
    config = Config()
    config.set("logger_class", settings["logger_class"])
    assert config.logger_class is AccessLogger
