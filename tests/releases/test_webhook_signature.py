"""`POST /new-release-webhook`: the signature and the configuration gate (docs/webhooks.md)."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest

from tests.webhook_support import (
    NO_ROWS,
    SIGNATURE,
    URL,
    encode,
    payload,
    post,
    row_counts,
    sign,
)

pytestmark = pytest.mark.django_db


def test_it_accepts_a_correctly_signed_body(
    client, webhook_settings, staging_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, payload())
    assert response.status_code == 202
    assert row_counts()["releases"] == 1
    assert len(staging_queue) == 1


def _refused(response, status: int, message: str, staging_queue) -> None:
    assert response.status_code == status
    assert response.json()["error"] == message
    assert row_counts() == NO_ROWS
    assert len(staging_queue) == 0


def test_it_refuses_a_body_without_signature(client, webhook_settings, staging_queue):
    raw = encode(payload())
    response = client.post(URL, data=raw, content_type="application/json")
    _refused(response, 401, "missing X-ToDesktop-HMAC-SHA256 header", staging_queue)


def test_it_refuses_an_empty_signature(client, webhook_settings, staging_queue):
    response = post(client, payload(), **{SIGNATURE: ""})
    _refused(response, 401, "missing X-ToDesktop-HMAC-SHA256 header", staging_queue)


@pytest.mark.parametrize(
    "signature",
    [
        "0" * 64,
        "not-hex-at-all",
        "sha256=" + "0" * 64,
        "é" * 64,  # non-ASCII: hmac.compare_digest would raise on it
    ],
)
def test_it_refuses_a_wrong_signature(client, webhook_settings, staging_queue, signature):
    response = post(client, payload(), **{SIGNATURE: signature})
    _refused(response, 401, "invalid X-ToDesktop-HMAC-SHA256 signature", staging_queue)


def test_it_refuses_a_body_signed_with_another_key(client, webhook_settings, staging_queue):
    raw = encode(payload())
    response = post(client, raw, **{SIGNATURE: sign(raw, key="someone-elses-key")})
    _refused(response, 401, "invalid X-ToDesktop-HMAC-SHA256 signature", staging_queue)


def test_it_refuses_a_body_changed_after_signing(client, webhook_settings, staging_queue):
    signed = encode(payload())
    tampered = encode(payload(releaseInfo={"latestReleaseBuildId": "attackerbuild1"}))
    response = post(client, tampered, **{SIGNATURE: sign(signed)})
    _refused(response, 401, "invalid X-ToDesktop-HMAC-SHA256 signature", staging_queue)


def test_it_refuses_a_signature_of_the_body_with_one_more_byte(
    client, webhook_settings, staging_queue
):
    raw = encode(payload())
    response = post(client, raw, **{SIGNATURE: sign(raw + b" ")})
    _refused(response, 401, "invalid X-ToDesktop-HMAC-SHA256 signature", staging_queue)


def test_it_accepts_the_hex_digest_in_upper_case(
    client, webhook_settings, staging_queue, django_capture_on_commit_callbacks
):
    raw = encode(payload())
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, raw, **{SIGNATURE: sign(raw).upper()})
    assert response.status_code == 202


@pytest.mark.parametrize("missing", ["WEBHOOK_HMAC_KEY", "TODESKTOP_APP_ID"])
def test_it_answers_503_and_accepts_nothing_while_unconfigured(
    client, webhook_settings, staging_queue, missing
):
    setattr(webhook_settings, missing, "")
    response = post(client, payload())
    _refused(
        response,
        503,
        "webhook not configured: set WEBHOOK_HMAC_KEY and TODESKTOP_APP_ID",
        staging_queue,
    )


def test_it_does_not_accept_an_unsigned_body_while_the_key_is_unset(
    client, webhook_settings, staging_queue
):
    webhook_settings.WEBHOOK_HMAC_KEY = ""
    raw = encode(payload())
    response = client.post(URL, data=raw, content_type="application/json")
    assert response.status_code == 503
    assert row_counts() == NO_ROWS


def test_it_answers_405_to_a_get(client, webhook_settings):
    assert client.get(URL).status_code == 405


def _raw_post(live_server, header_name: str, signature: str, raw: bytes) -> tuple[int, bytes]:
    """A real HTTP request whose header name is sent exactly as given."""
    address = urlsplit(live_server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.putrequest("POST", URL)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(raw)))
        connection.putheader(header_name, signature)
        connection.endheaders(raw)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "header_name",
    [
        "X-ToDesktop-HMAC-SHA256",
        "x-todesktop-hmac-sha256",
        "X-TODESKTOP-HMAC-SHA256",
        "x-ToDeSkToP-hMaC-sHa256",
    ],
)
def test_the_header_name_is_case_insensitive_over_http(
    live_server, webhook_settings, staging_queue, header_name
):
    raw = encode(payload())
    status, _ = _raw_post(live_server, header_name, sign(raw), raw)
    assert status == 202
    assert row_counts()["releases"] == 1
    assert len(staging_queue) == 1


@pytest.mark.django_db(transaction=True)
def test_a_wrong_signature_over_http_is_refused_whatever_the_header_case(
    live_server, webhook_settings, staging_queue
):
    raw = encode(payload())
    status, body = _raw_post(live_server, "x-todesktop-hmac-sha256", sign(b"other"), raw)
    assert status == 401
    assert b"invalid X-ToDesktop-HMAC-SHA256 signature" in body
    assert row_counts() == NO_ROWS
    assert len(staging_queue) == 0
