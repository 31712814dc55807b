"""`POST /new-release-webhook`: what an accepted body stores and queues; idempotency
(docs/webhooks.md)."""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
from urllib.parse import urlsplit

import pytest

from releases.models import (
    AuditEvent,
    Build,
    BuildStatus,
    ReleaseRequest,
    ReleaseState,
    WebhookDelivery,
)
from tests.webhook_support import (
    APP_ID,
    BASE_URL,
    BUILD_ID,
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
STAGE = "releases.tasks.stage_build"


@pytest.fixture
def deliver(client, webhook_settings, staging_queue, django_capture_on_commit_callbacks):
    """POST a signed body and run what was deferred to the commit (the queueing)."""

    def send(body, **headers):
        with django_capture_on_commit_callbacks(execute=True):
            return post(client, body, **headers)

    return send


def test_an_accepted_body_is_answered_202_with_the_release_and_its_admin_url(deliver):
    response = deliver(payload())
    assert response.status_code == 202
    release = ReleaseRequest.objects.get()
    assert response.json() == {
        "release_id": release.pk,
        "build_id": BUILD_ID,
        "state": "pending",
        "admin_url": f"{BASE_URL}/admin/releases/releaserequest/{release.pk}/change/",
        "duplicate": False,
    }


def test_an_accepted_body_is_stored_verbatim_with_its_parsed_fields(deliver):
    body = payload()
    raw = encode(body)
    deliver(raw)
    delivery = WebhookDelivery.objects.get()
    assert delivery.source == "todesktop"
    assert delivery.event == "release"
    assert bytes(delivery.body) == raw
    assert delivery.delivery_key == hashlib.sha256(raw).hexdigest()
    build = Build.objects.get()
    assert (build.build_id, build.app_id, build.status) == (BUILD_ID, APP_ID, "received")
    assert (build.version, build.platforms) == ("", [])  # known once staging read the manifests
    release = ReleaseRequest.objects.get()
    assert (release.build, release.delivery, release.kind) == (build, delivery, "release")
    assert release.payload == body
    assert release.release_info == body["releaseInfo"]


def test_the_stored_headers_keep_the_signature_but_no_credentials(deliver):
    raw = encode(payload())
    deliver(raw, Cookie="sessionid=abc", Authorization="Bearer xyz", **{"X-Api-Token": "t"})
    headers = {name.lower(): value for name, value in WebhookDelivery.objects.get().headers.items()}
    assert headers[SIGNATURE.lower()] == sign(raw)
    assert headers["content-type"] == "application/json"
    stored = json.dumps(headers)
    assert "sessionid" not in stored and "xyz" not in stored and "x-api-token" not in stored


def test_an_accepted_body_is_audited(deliver):
    deliver(payload())
    [event] = AuditEvent.objects.all()
    assert event.kind == "webhook.received"
    assert event.build == Build.objects.get()
    assert event.release == ReleaseRequest.objects.get()
    assert event.message == f"release webhook for build {BUILD_ID} accepted; staging queued"
    assert event.data["appVersion"] == "4.27.0"


def test_staging_is_queued_once_and_only_after_commit(
    client, webhook_settings, staging_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post(client, payload())
    assert len(staging_queue) == 0  # the transaction has not committed yet
    for callback in callbacks:
        callback()
    assert staging_queue.tasks() == [(STAGE, [ReleaseRequest.objects.get().pk])]


def test_the_same_body_again_creates_nothing_and_answers_200_with_the_record(
    deliver, staging_queue
):
    raw = encode(payload())
    first = deliver(raw).json()
    counts = row_counts()
    again = deliver(raw)
    assert again.status_code == 200
    assert again.json() == {**first, "duplicate": True}
    assert row_counts() == counts
    assert len(staging_queue) == 1


def test_a_duplicate_answers_with_the_current_state_of_the_record(deliver):
    raw = encode(payload())
    deliver(raw)
    ReleaseRequest.objects.update(state=ReleaseState.IN_REVIEW)
    assert deliver(raw).json()["state"] == "in_review"


def test_a_re_release_is_a_new_request_for_the_same_build_and_queues_staging(
    deliver, staging_queue
):
    first = deliver(payload()).json()
    Build.objects.update(status=BuildStatus.STAGED)
    rules = {
        "latestReleaseBuildId": BUILD_ID,
        "releaseRedirections": [{"rule": "build", "buildId": BUILD_ID}],
    }
    second = deliver(payload(releaseInfo=rules))
    assert second.status_code == 202
    assert second.json()["release_id"] != first["release_id"]
    assert Build.objects.count() == 1
    assert ReleaseRequest.objects.get(pk=second.json()["release_id"]).release_info == rules
    assert staging_queue.tasks() == [
        (STAGE, [first["release_id"]]),
        (STAGE, [second.json()["release_id"]]),
    ]
    [_, event] = AuditEvent.objects.order_by("sequence")
    assert "re-release" in event.message


def test_a_body_for_another_build_is_a_new_build(deliver):
    deliver(payload())
    deliver(payload(buildId="250301abcdefghi"))
    assert sorted(Build.objects.values_list("build_id", flat=True)) == sorted(
        [BUILD_ID, "250301abcdefghi"]
    )


def _deliver_over_http(live_server, raw: bytes, barrier: threading.Barrier, results: list):
    address = urlsplit(live_server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    barrier.wait()
    try:
        connection.request(
            "POST",
            URL,
            body=raw,
            headers={SIGNATURE: sign(raw), "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        results.append((response.status, json.loads(response.read())))
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deliveries_of_one_body_make_one_release_and_one_task(
    live_server, webhook_settings, staging_queue
):
    raw = encode(payload())
    barrier = threading.Barrier(20)
    results: list = []
    threads = [
        threading.Thread(target=_deliver_over_http, args=(live_server, raw, barrier, results))
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 19 + [202]
    release = ReleaseRequest.objects.get()
    assert {answer["release_id"] for _, answer in results} == {release.pk}
    assert row_counts() == {"builds": 1, "releases": 1, "deliveries": 1, "events": 1}
    assert staging_queue.tasks() == [(STAGE, [release.pk])]


@pytest.mark.django_db(transaction=True)
def test_concurrent_re_releases_of_one_new_build_share_the_build(
    live_server, webhook_settings, staging_queue
):
    bodies = [
        encode(payload(releaseInfo={"latestReleaseBuildId": BUILD_ID, "n": n})) for n in range(8)
    ]
    barrier = threading.Barrier(len(bodies))
    results: list = []
    threads = [
        threading.Thread(target=_deliver_over_http, args=(live_server, raw, barrier, results))
        for raw in bodies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(status for status, _ in results) == [202] * 8
    assert row_counts() == {"builds": 1, "releases": 8, "deliveries": 8, "events": 8}
    assert len(staging_queue) == 8


@pytest.mark.slow  # waits out Celery's publish retries to a closed port
def test_a_broker_outage_marks_the_release_failed_instead_of_answering_500(
    client, webhook_settings, broker_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, payload())
    assert response.status_code == 202
    release = ReleaseRequest.objects.select_related("build").get()
    assert release.state == ReleaseState.FAILED
    assert release.build.status == BuildStatus.FAILED
    assert release.failure_reason.startswith("could not queue staging")
    assert AuditEvent.objects.filter(kind="staging.queue_failed", release=release).exists()


def test_only_allow_listed_headers_are_stored_with_a_delivery(deliver):
    raw = encode(payload())
    secrets = {
        "Cf-Access-Jwt-Assertion": "eyJhbGciOi.jwt.secret",
        "X-Auth": "x-auth-secret",
        "X-Credential": "credential-secret",
        "X-Private-Key": "-----BEGIN PRIVATE KEY-----",
        "X-Amz-Security-Token": "token-secret",
    }
    deliver(raw, **secrets)

    stored = WebhookDelivery.objects.get().headers
    assert set(stored) <= {"Content-Type", "Content-Length", "User-Agent", SIGNATURE}
    assert stored[SIGNATURE] == sign(raw)
    assert "secret" not in json.dumps(stored) and "PRIVATE" not in json.dumps(stored)


@pytest.mark.parametrize("depth", [64, 300, 950])
def test_a_signed_body_nested_too_deep_is_a_400_that_stores_nothing(
    client, webhook_settings, depth
):
    client.raise_request_exception = False
    body = encode(payload())[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"

    response = post(client, body)

    assert response.status_code == 400
    assert response.json()["error"].startswith("body is not JSON (nested too deeply")
    assert row_counts() == NO_ROWS


@pytest.mark.slow  # waits out Celery's publish retries to a closed port
@pytest.mark.django_db(transaction=True)
def test_the_answer_says_failed_when_queueing_failed(client, webhook_settings, broker_down):
    # transaction=True: the queueing runs on commit, before the answer, as in production.
    response = post(client, payload())

    release = ReleaseRequest.objects.get()
    assert release.state == ReleaseState.FAILED
    assert response.status_code == 202  # stored: a retry by ToDesktop would be a duplicate
    assert response.json()["state"] == "failed"
    assert response.json()["failure_reason"] == release.failure_reason
    assert release.failure_reason.startswith("could not queue staging")
