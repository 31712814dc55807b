"""Staging → review: a signed release webhook ends with exactly one PR in the fake GitHub that
lists every staged file (issue 4, with the staging pipeline of issue 3; Celery eager)."""

from __future__ import annotations

import json

import pytest

from releases.integrations import buckets
from releases.models import BuildStatus, ReleaseRequest, ReleaseState
from tests.fakes.todesktop_origin import FakeBuild, start_origin
from tests.webhook_support import payload, post

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fs_buckets", "webhook_settings")]


@pytest.fixture
def origin(settings):
    server = start_origin(FakeBuild(version="1.2.0"))
    settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    yield server
    server.stop()


def test_a_signed_webhook_ends_with_one_pr_listing_every_staged_file(
    fake_github, origin, client, django_capture_on_commit_callbacks
):
    body = payload(appVersion="1.2.0")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, body)
    assert response.status_code in (200, 201, 202)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, body).status_code in (200, 201, 202)  # a redelivery: nothing new

    release = ReleaseRequest.objects.get()
    assert (release.state, release.build.status) == (ReleaseState.IN_REVIEW, BuildStatus.IN_REVIEW)
    (pull,) = fake_github.pulls()
    assert pull["number"] == release.pr_number
    build_id = body["buildId"]
    staged = [
        info.key.removeprefix(f"{build_id}/") for info in buckets.staging().list(f"{build_id}/")
    ]
    assert staged
    for name in staged:
        assert f"| `{name}` |" in pull["body"]
    branch = pull["head"]["ref"]
    builds = json.loads(fake_github.file("desktop-builds.json", branch))
    assert [(b["id"], b["version"], b["isReleased"]) for b in builds] == [(build_id, "1.2.0", True)]
    assert json.loads(fake_github.file("desktop-releases.json", branch)) == body["releaseInfo"]
