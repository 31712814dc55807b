"""Both webhook signature checks, on raw bytes, never raising on odd headers."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from releases.signatures import github_signature_valid, todesktop_signature_valid

BODY = b'{"appId":"a","buildId":"b"}'


def _hex(key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def test_a_todesktop_signature_matches_only_its_key_and_body():
    good = _hex("k", BODY)
    assert todesktop_signature_valid(key="k", body=BODY, header=good)
    assert todesktop_signature_valid(key="k", body=BODY, header=good.upper())
    assert not todesktop_signature_valid(key="other", body=BODY, header=good)
    assert not todesktop_signature_valid(key="k", body=BODY + b" ", header=good)
    assert not todesktop_signature_valid(key="", body=BODY, header=_hex("", BODY))


def test_a_github_signature_needs_its_prefix_secret_and_body():
    good = "sha256=" + _hex("s", BODY)
    assert github_signature_valid(secret="s", body=BODY, header=good)
    assert not github_signature_valid(secret="s", body=BODY, header=_hex("s", BODY))
    assert not github_signature_valid(secret="x", body=BODY, header=good)
    assert not github_signature_valid(secret="s", body=BODY[:-1], header=good)
    assert not github_signature_valid(secret="", body=BODY, header="sha256=" + _hex("", BODY))


@pytest.mark.parametrize("header", ["sha256=é" * 8, "sha256=\udcff", "sha256=😀", "", None])
def test_odd_headers_are_refused_not_raised(header):
    assert not github_signature_valid(secret="s", body=BODY, header=header)
    assert not todesktop_signature_valid(key="k", body=BODY, header=header)
