"""A re-release through the webhook: a second release request whose staging downloads nothing.

The real staging service runs the queued tasks against the fake ToDesktop origin (HTTP on
loopback) and filesystem buckets; the tasks are taken from Redis's `staging` queue.
"""

from __future__ import annotations

import pytest

from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.tasks import stage_build
from tests.fakes.todesktop_origin import FakeBuild, start_origin
from tests.webhook_support import APP_ID, BUILD_ID, payload, post

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fs_buckets")]
STAGE = "releases.tasks.stage_build"


@pytest.fixture
def origin(webhook_settings):
    server = start_origin(FakeBuild(app_id=APP_ID, build_id=BUILD_ID))
    webhook_settings.TODESKTOP_DOWNLOAD_BASE_URL = server.url
    webhook_settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    yield server
    server.stop()


@pytest.fixture
def deliver_and_work(client, staging_queue, django_capture_on_commit_callbacks):
    """Deliver a body, then do what a staging worker does with the one task it queued."""

    def run(body) -> ReleaseRequest:
        with django_capture_on_commit_callbacks(execute=True):
            answer = post(client, body).json()
        assert staging_queue.tasks() == [(STAGE, [answer["release_id"]])]
        _task, args = staging_queue.pop()
        stage_build.apply(args=args, throw=True)
        return ReleaseRequest.objects.get(pk=answer["release_id"])

    return run


def test_a_re_release_body_makes_a_second_request_whose_staging_downloads_nothing(
    origin, deliver_and_work
):
    first = deliver_and_work(payload())
    build = Build.objects.get()
    assert build.status == BuildStatus.IN_REVIEW  # staged, then the (admin) review opened
    assert first.state == ReleaseState.IN_REVIEW
    assert len(origin.log) > 10  # manifests, artifacts and blockmaps were downloaded
    origin.log.clear()

    rules = [{"rule": "buildByPlatform", "buildId": BUILD_ID, "platforms": ["mac"]}]
    second = deliver_and_work(
        payload(releaseInfo={"latestReleaseBuildId": BUILD_ID, "releaseRedirections": rules})
    )

    assert origin.log == []
    assert second.pk != first.pk and second.build == build
    assert second.state == ReleaseState.IN_REVIEW
    assert second.release_info["releaseRedirections"] == rules
    assert Build.objects.count() == 1
    assert AuditEvent.objects.filter(release=second, kind="staging.reused").count() == 1
