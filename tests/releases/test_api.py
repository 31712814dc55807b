"""The read-only API: token auth, permissions, pagination, filters, schema."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from releases.models import BuildFile, Verification
from releases.services.audit import audit_record
from tests.factories import make_build

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer_api():
    user = User.objects.create_user("rita")
    user.groups.add(Group.objects.get(name="auditors"))
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.secret}")
    return client


def test_it_refuses_anonymous_and_unknown_tokens():
    assert APIClient().get("/api/builds/").status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/builds/").status_code == 401


def test_a_user_without_view_permission_is_forbidden():
    user = User.objects.create_user("nobody")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).secret}")
    assert client.get("/api/builds/").status_code == 403


def test_a_reviewer_lists_builds_with_their_files_filtered_and_paginated(reviewer_api):
    build = make_build(build_id="250210vv2q75v93", version="4.27.0", status="staged")
    make_build(status="failed")
    BuildFile.objects.create(
        build=build, name="latest.yml", size=10, sha512="abc", verification=Verification.VERIFIED
    )
    answer = reviewer_api.get("/api/builds/", {"status": "staged"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["count"] == 1
    [item] = body["results"]
    assert item["build_id"] == "250210vv2q75v93"
    assert item["files"][0]["name"] == "latest.yml"
    assert item["files"][0]["verification"] == "verified"
    one = reviewer_api.get("/api/builds/250210vv2q75v93/")
    assert one.json()["version"] == "4.27.0"
    assert reviewer_api.get("/api/builds/unknown/").status_code == 404


def test_audit_events_are_listed_in_order_and_cannot_be_written(reviewer_api):
    build = make_build()
    first = audit_record(kind="test", message="event 0", build=build).sequence
    for n in range(1, 3):
        audit_record(kind="test", message=f"event {n}", build=build)
    answer = reviewer_api.get("/api/events/", {"sequence__gt": first, "kind": "test"})
    assert [e["sequence"] for e in answer.json()["results"]] == [first + 1, first + 2]
    assert reviewer_api.post("/api/events/", {"kind": "x"}).status_code == 403
    boss = User.objects.create_superuser("boss")
    superuser = APIClient()
    superuser.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=boss).secret}")
    assert superuser.post("/api/events/", {"kind": "x"}).status_code == 405
    assert superuser.delete("/api/events/1/").status_code == 405
    assert superuser.patch("/api/events/1/", {"message": "x"}).status_code == 405
    assert answer.json()["count"] == 2


def test_the_openapi_schema_is_served(reviewer_api):
    answer = reviewer_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert answer.status_code == 200
    assert "/api/builds/" in answer.json()["paths"]


@pytest.fixture
def manager_api():
    user = User.objects.create_user("mona")
    user.groups.add(Group.objects.get(name="release managers"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).secret}")
    return client


def test_a_release_manager_retries_staging_of_a_failed_release(manager_api, reviewer_api):
    from releases.models import AuditEvent, Build, ReleaseRequest
    from tests.factories import make_release

    release = make_release(make_build(status="failed"), state="failed")
    url = f"/api/releases/{release.pk}/retry-staging/"
    assert reviewer_api.post(url).status_code == 403  # reviewers only read
    answer = manager_api.post(url)
    assert answer.status_code == 202
    assert answer.json() == {"queued": 1}
    assert Build.objects.get(pk=release.build_id).status == "received"
    assert AuditEvent.objects.filter(kind="staging.retry", actor="mona").exists()
    # nothing left to retry: a clear conflict, nothing changes
    again = manager_api.post(url)
    assert again.status_code == 409
    assert "cannot be retried" in again.json()["error"]
    assert ReleaseRequest.objects.get(pk=release.pk).state != "failed"


def test_retrying_an_unknown_release_is_a_404(manager_api):
    assert manager_api.post("/api/releases/999999/retry-staging/").status_code == 404


def test_a_release_manager_queues_a_reconcile_and_a_reviewer_cannot(manager_api, reviewer_api):
    assert reviewer_api.post("/api/reconcile/").status_code == 403
    assert APIClient().post("/api/reconcile/").status_code == 401


def test_a_release_manager_reconcile_runs_and_is_audited(manager_api, fs_buckets):
    from releases.models import AuditEvent

    answer = manager_api.post("/api/reconcile/")
    assert answer.status_code == 202
    # eager in tests: the reconcile ran; with nothing approved, production is in sync
    assert not AuditEvent.objects.filter(kind="promotion.failed").exists()
