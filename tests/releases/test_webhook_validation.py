"""`POST /new-release-webhook`: bad bodies get a clear 4xx and leave no trace (docs/webhooks.md)."""

from __future__ import annotations

import io
import json
import logging
from urllib.parse import urlsplit

import pytest

from releases.errors import WebhookRejected
from releases.services.intake import release_receive
from tests.webhook_support import (
    APP_ID,
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

BAD_ID = "must be 1-64 characters of A-Z a-z 0-9 _ -"
RULES = "releaseInfo.releaseRedirections[0]"
KINDS = "build, buildByIp, buildByPlatform, appByIp"
UNSTORABLE = "body contains a NUL character or an unpaired surrogate escape"


def rules(*items) -> dict:
    return payload(
        releaseInfo={"latestReleaseBuildId": "250210vv2q75v93", "releaseRedirections": list(items)}
    )


def without(*names: str) -> dict:
    body = payload()
    for name in names:
        del body[name]
    return body


def vcs(**fields) -> dict:
    return payload(versionControlInfo={**payload()["versionControlInfo"], **fields})


# (case, body: bytes or JSON-able, status, the exact `error` of the answer)
MATRIX = [
    (
        "not-json",
        b"this is not json",
        400,
        "body is not JSON (Expecting value: line 1 column 1 (char 0))",
    ),
    ("empty-body", b"", 400, "body is not JSON (Expecting value: line 1 column 1 (char 0))"),
    ("truncated-json", encode(payload())[:-1], 400, None),
    ("trailing-garbage", encode(payload()) + b" x", 400, None),
    (
        "duplicate-key",
        encode(payload())[:-1] + b', "buildId": "../production"}',
        400,
        "body is not JSON (duplicate key 'buildId')",
    ),
    ("json-array", [payload()], 400, "body must be a JSON object, not an array"),
    ("json-string", "250210vv2q75v93", 400, "body must be a JSON object, not a string"),
    ("json-null", b"null", 400, "body must be a JSON object, not null"),
    ("json-number", b"42", 400, "body must be a JSON object, not a number"),
    ("not-utf8", b'{"appId": "\xff"}', 400, "body is not UTF-8 text"),
    ("utf16", json.dumps(payload()).encode("utf-16"), 400, "body is not UTF-8 text"),
    ("utf8-bom", b"\xef\xbb\xbf" + encode(payload()), 400, None),
    ("nan", encode(payload())[:-1] + b', "x": NaN}', 400, "body is not JSON (NaN is not JSON)"),
    (
        "infinity",
        encode(payload())[:-1] + b', "x": -Infinity}',
        400,
        "body is not JSON (-Infinity is not JSON)",
    ),
    (
        "deep-nesting",
        encode(payload())[:-1] + b', "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        400,
        "body is not JSON (nested too deeply)",
    ),
    ("empty-object", {}, 400, "invalid payload: appId is required; buildId is required"),
    ("missing-build-id", without("buildId"), 400, "invalid payload: buildId is required"),
    ("missing-app-id", without("appId"), 400, "invalid payload: appId is required"),
    ("empty-build-id", payload(buildId=""), 400, "invalid payload: buildId must not be empty"),
    ("empty-app-id", payload(appId=""), 400, "invalid payload: appId must not be empty"),
    ("null-build-id", payload(buildId=None), 400, "invalid payload: buildId must be a string"),
    ("numeric-build-id", payload(buildId=250210), 400, "invalid payload: buildId must be a string"),
    (
        "build-id-list",
        payload(buildId=["250210vv2q75v93"]),
        400,
        "invalid payload: buildId must be a string",
    ),
    (
        "build-id-traversal",
        payload(buildId="../production"),
        400,
        f"invalid payload: buildId {BAD_ID}",
    ),
    ("build-id-dotdot", payload(buildId=".."), 400, f"invalid payload: buildId {BAD_ID}"),
    ("build-id-slash", payload(buildId="abc/def"), 400, f"invalid payload: buildId {BAD_ID}"),
    ("build-id-backslash", payload(buildId="abc\\def"), 400, f"invalid payload: buildId {BAD_ID}"),
    ("build-id-space", payload(buildId="abc def"), 400, f"invalid payload: buildId {BAD_ID}"),
    ("build-id-newline", payload(buildId="abcdef\n"), 400, f"invalid payload: buildId {BAD_ID}"),
    ("build-id-too-long", payload(buildId="a" * 65), 400, f"invalid payload: buildId {BAD_ID}"),
    (
        "build-id-greek",
        payload(buildId="250210vv2q75υ93"),
        400,
        f"invalid payload: buildId {BAD_ID}",
    ),
    (
        "build-id-fullwidth",
        payload(buildId="２５０２１０"),
        400,
        f"invalid payload: buildId {BAD_ID}",
    ),
    ("build-id-percent", payload(buildId="abc%2Fdef"), 400, f"invalid payload: buildId {BAD_ID}"),
    (
        "app-id-traversal",
        payload(appId="../240808w4a9kky77"),
        400,
        f"invalid payload: appId {BAD_ID}",
    ),
    ("nul-in-build-id", payload(buildId="abc\u0000"), 400, UNSTORABLE),
    ("nul-in-unknown-field", payload(extra="\u0000"), 400, UNSTORABLE),
    ("lone-surrogate", encode(payload())[:-1] + b', "note": "\\ud800"}', 400, UNSTORABLE),
    (
        "app-version-number",
        payload(appVersion=4.27),
        400,
        "invalid payload: appVersion must be a string",
    ),
    (
        "app-name-list",
        payload(appName=["My App"]),
        400,
        "invalid payload: appName must be a string",
    ),
    ("user-id-object", payload(userId={"id": 1}), 400, "invalid payload: userId must be a string"),
    (
        "electron-version-bool",
        payload(electronVersionUsed=True),
        400,
        "invalid payload: electronVersionUsed must be a string",
    ),
    (
        "started-at-words",
        payload(buildStartedAt="yesterday"),
        400,
        "invalid payload: buildStartedAt must be an ISO-8601 date and time",
    ),
    (
        "ended-at-epoch",
        payload(buildEndedAt=1739192106),
        400,
        "invalid payload: buildEndedAt must be a string",
    ),
    (
        "vcs-string",
        payload(versionControlInfo="git"),
        400,
        "invalid payload: versionControlInfo must be an object",
    ),
    (
        "vcs-uncommitted-string",
        vcs(hasUncommittedChanges="true"),
        400,
        "invalid payload: versionControlInfo.hasUncommittedChanges must be true or false",
    ),
    (
        "vcs-uncommitted-int",
        vcs(hasUncommittedChanges=1),
        400,
        "invalid payload: versionControlInfo.hasUncommittedChanges must be true or false",
    ),
    (
        "vcs-commit-id-number",
        vcs(commitId=123),
        400,
        "invalid payload: versionControlInfo.commitId must be a string",
    ),
    (
        "vcs-commit-date",
        vcs(commitDate="05/02/2025"),
        400,
        "invalid payload: versionControlInfo.commitDate must be an ISO-8601 date and time",
    ),
    (
        "release-info-list",
        payload(releaseInfo=[]),
        400,
        "invalid payload: releaseInfo must be an object",
    ),
    (
        "latest-release-traversal",
        payload(releaseInfo={"latestReleaseBuildId": "../x"}),
        400,
        f"invalid payload: releaseInfo.latestReleaseBuildId {BAD_ID}",
    ),
    (
        "latest-release-number",
        payload(releaseInfo={"latestReleaseBuildId": 7}),
        400,
        "invalid payload: releaseInfo.latestReleaseBuildId must be a string",
    ),
    (
        "redirections-object",
        payload(releaseInfo={"releaseRedirections": {"rule": "build"}}),
        400,
        "invalid payload: releaseInfo.releaseRedirections must be a list",
    ),
    ("rule-not-object", rules("build"), 400, f"invalid payload: {RULES} must be an object"),
    (
        "rule-without-kind",
        rules({"buildId": "250210vv2q75v93"}),
        400,
        f"invalid payload: {RULES} needs a 'rule' (one of {KINDS})",
    ),
    (
        "rule-unknown-kind",
        rules({"rule": "buildByCountry", "buildId": "a"}),
        400,
        f"invalid payload: {RULES} has an unknown rule 'buildByCountry' (expected one of {KINDS})",
    ),
    ("rule-kind-number", rules({"rule": 1, "buildId": "a"}), 400, None),
    (
        "build-rule-no-build-id",
        rules({"rule": "build"}),
        400,
        f"invalid payload: {RULES}.buildId is required",
    ),
    (
        "build-rule-bad-build-id",
        rules({"rule": "build", "buildId": "x/../y"}),
        400,
        f"invalid payload: {RULES}.buildId {BAD_ID}",
    ),
    (
        "by-ip-no-list",
        rules({"rule": "buildByIp", "buildId": "a"}),
        400,
        f"invalid payload: {RULES}.ipList is required",
    ),
    (
        "by-ip-list-is-string",
        rules({"rule": "buildByIp", "buildId": "a", "ipList": "1.2.3.4"}),
        400,
        f"invalid payload: {RULES}.ipList must be a list",
    ),
    (
        "by-ip-bad-address",
        rules({"rule": "buildByIp", "buildId": "a", "ipList": ["1.2.3.4", "1.2.3.256"]}),
        400,
        f"invalid payload: {RULES}.ipList[1] must be an IPv4 or IPv6 address",
    ),
    (
        "by-ip-cidr",
        rules({"rule": "buildByIp", "buildId": "a", "ipList": ["10.0.0.0/8"]}),
        400,
        f"invalid payload: {RULES}.ipList[0] must be an IPv4 or IPv6 address",
    ),
    (
        "by-ip-hostname",
        rules({"rule": "buildByIp", "buildId": "a", "ipList": ["localhost"]}),
        400,
        f"invalid payload: {RULES}.ipList[0] must be an IPv4 or IPv6 address",
    ),
    (
        "by-ip-number",
        rules({"rule": "buildByIp", "buildId": "a", "ipList": [16909060]}),
        400,
        f"invalid payload: {RULES}.ipList[0] must be a string",
    ),
    (
        "by-platform-unknown",
        rules({"rule": "buildByPlatform", "buildId": "a", "platforms": ["ios"]}),
        400,
        f"invalid payload: {RULES}.platforms[0] must be one of windows, mac or linux",
    ),
    (
        "by-platform-string",
        rules({"rule": "buildByPlatform", "buildId": "a", "platforms": "mac"}),
        400,
        f"invalid payload: {RULES}.platforms must be a list",
    ),
    (
        "by-platform-case",
        rules({"rule": "buildByPlatform", "buildId": "a", "platforms": ["Mac"]}),
        400,
        f"invalid payload: {RULES}.platforms[0] must be one of windows, mac or linux",
    ),
    (
        "by-platform-no-build",
        rules({"rule": "buildByPlatform", "platforms": ["mac"]}),
        400,
        f"invalid payload: {RULES}.buildId is required",
    ),
    (
        "app-by-ip-no-feed",
        rules({"rule": "appByIp", "ipList": ["1.2.3.4"]}),
        400,
        f"invalid payload: {RULES}.feedUrl is required",
    ),
    (
        "app-by-ip-script-url",
        rules({"rule": "appByIp", "feedUrl": "javascript:alert(1)", "ipList": []}),
        400,
        f"invalid payload: {RULES}.feedUrl must be an http(s) URL",
    ),
    (
        "second-rule-bad",
        rules({"rule": "build", "buildId": "a"}, {"rule": "build", "buildId": ""}),
        400,
        "invalid payload: releaseInfo.releaseRedirections[1].buildId must not be empty",
    ),
    ("other-app", payload(appId="otherapp123"), 403, "appId 'otherapp123' is not this app"),
    (
        "other-app-case",
        payload(appId=APP_ID.upper()),
        403,
        f"appId {APP_ID.upper()!r} is not this app",
    ),
    ("huge", payload(padding="x" * (1024 * 1024)), 413, "body larger than 1048576 bytes"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "error"), MATRIX, ids=[row[0] for row in MATRIX]
)
def test_a_bad_body_gets_a_clear_4xx_and_leaves_no_trace(
    client,
    webhook_settings,
    staging_queue,
    django_capture_on_commit_callbacks,
    case,
    body,
    status,
    error,
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(client, body)
    assert response.status_code == status, response.content
    answer = response.json()
    if error is None:
        assert answer["error"].startswith("body is not JSON") or answer["error"].startswith(
            "invalid payload"
        )
    else:
        assert answer["error"] == error
    assert row_counts() == NO_ROWS
    assert callbacks == []
    assert len(staging_queue) == 0


def test_the_answer_lists_every_field_error(client, webhook_settings):
    body = payload(buildId="", appVersion=1, versionControlInfo={"hasUncommittedChanges": "no"})
    answer = post(client, body).json()
    assert answer["errors"] == [
        {"field": "buildId", "message": "must not be empty"},
        {"field": "appVersion", "message": "must be a string"},
        {"field": "versionControlInfo.hasUncommittedChanges", "message": "must be true or false"},
    ]


def test_a_rejection_is_logged_in_one_line(client, webhook_settings, caplog):
    with caplog.at_level(logging.WARNING, logger="releases.services.intake"):
        post(client, payload(buildId="../x"))
    [record] = caplog.records
    assert record.getMessage().startswith(
        "todesktop webhook rejected: 400 invalid payload: buildId"
    )
    assert "\n" not in record.getMessage()


@pytest.mark.parametrize(
    "body",
    [
        payload(appName="Mön Äpp 🚀 デスクトップ", appVersion="4.27.0-βeta"),
        payload(userId=None, appName=None, versionControlInfo=None, releaseInfo=None),
        payload(releaseInfo={"latestReleaseBuildId": None, "releaseRedirections": None}),
        without("userId", "versionControlInfo", "releaseInfo", "buildStartedAt"),
        rules(
            {"rule": "build", "buildId": "a"},
            {"rule": "buildByIp", "buildId": "b", "ipList": ["1.2.3.4", "2001:DB8::7"]},
            {"rule": "buildByPlatform", "buildId": "c", "platforms": ["windows", "mac", "linux"]},
            {"rule": "appByIp", "feedUrl": "https://feed.example.com", "ipList": []},
        ),
    ],
    ids=[
        "unicode-text",
        "nulls",
        "null-release-info-fields",
        "optional-fields-absent",
        "every-rule-kind",
    ],
)
def test_good_bodies_pass_validation(client, webhook_settings, body):
    assert post(client, body).status_code == 202


def test_unknown_fields_are_kept(client, webhook_settings):
    from releases.models import ReleaseRequest

    body = payload(newToDesktopField={"nested": [1, 2]}, releaseInfo={"futureKey": "kept"})
    body["versionControlInfo"]["signedCommit"] = True
    assert post(client, body).status_code == 202
    stored = ReleaseRequest.objects.get().payload
    assert stored["newToDesktopField"] == {"nested": [1, 2]}
    assert stored["versionControlInfo"]["signedCommit"] is True
    assert ReleaseRequest.objects.get().release_info == {"futureKey": "kept"}


def _padded(size: int) -> bytes:
    """A valid body of exactly `size` bytes (padded with an unknown field)."""
    base = encode(payload(padding=""))
    return encode(payload(padding="x" * (size - len(base))))


def test_a_body_of_exactly_the_limit_is_accepted(client, webhook_settings):
    webhook_settings.WEBHOOK_MAX_BODY_BYTES = 4096
    raw = _padded(4096)
    assert len(raw) == 4096
    assert post(client, raw).status_code == 202


def test_the_limit_is_configurable(client, webhook_settings, staging_queue):
    webhook_settings.WEBHOOK_MAX_BODY_BYTES = 4096
    response = post(client, _padded(4097))
    assert response.status_code == 413
    assert response.json()["error"] == "body larger than 4096 bytes"
    assert row_counts() == NO_ROWS


def test_a_body_longer_than_its_declared_length_is_measured_not_trusted(webhook_settings):
    # An ASGI server or a chunked request may give no Content-Length: the read is bounded.
    webhook_settings.WEBHOOK_MAX_BODY_BYTES = 4096
    raw = _padded(10_000)
    with pytest.raises(WebhookRejected) as refused:
        release_receive(
            stream=io.BytesIO(raw), content_length=None, signature=sign(raw), headers={}
        )
    assert refused.value.status == 413
    assert row_counts() == NO_ROWS


@pytest.mark.django_db(transaction=True)
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    live_server, webhook_settings, staging_queue
):
    import http.client

    address = urlsplit(live_server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
    try:
        connection.putrequest("POST", URL)
        connection.putheader("Content-Length", str(50 * 1024 * 1024))
        connection.putheader(SIGNATURE, "0" * 64)
        connection.endheaders()  # and not one byte of the 50 MiB: the answer must not wait
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"] == "body larger than 1048576 bytes"
    finally:
        connection.close()
    assert row_counts() == NO_ROWS
    assert len(staging_queue) == 0
