"""A staging task that runs out of retries leaves a visible failure, never a silent `received`."""

from __future__ import annotations

import pytest

from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services.staging import staging_give_up
from selfhosted.celery import app
from tests.fakes.todesktop_origin import FakeBuild, start_origin
from tests.test_staging_worker_killed import _kill, _start_worker, _wait, _worker_env


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
def test_a_build_whose_origin_never_recovers_fails_after_the_last_retry(tmp_path):
    fake = FakeBuild()
    origin = start_origin(fake)
    for document in origin.documents:
        origin.fail(document, times=10_000, status=503)
    env = _worker_env(origin.url, tmp_path)
    env.update(
        {"TASK_MAX_RETRIES": "2", "TASK_RETRY_BACKOFF_SECONDS": "1", "HTTP_MAX_RETRIES": "0"}
    )
    worker = _start_worker(env, tmp_path / "worker.log")
    try:
        build = Build.objects.create(build_id=fake.build_id, app_id=fake.app_id)
        release = ReleaseRequest.objects.create(build=build, payload={"buildId": fake.build_id})
        app.send_task("releases.tasks.stage_build", args=[release.pk], queue="staging")

        def failed() -> bool:
            release.refresh_from_db()
            return release.state == ReleaseState.FAILED

        _wait(failed, 60, "the release to fail")
    finally:
        _kill(worker)
        origin.stop()
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert release.failure_reason.startswith("staging gave up after retries: ")
    assert "503" in release.failure_reason
    assert AuditEvent.objects.filter(release=release, kind="staging.retrying").count() == 3
    assert AuditEvent.objects.filter(release=release, kind="staging.failed").count() == 1


@pytest.mark.django_db
def test_giving_up_leaves_a_build_another_worker_is_staging_alone():
    build = Build.objects.create(build_id="busy123", app_id="app", status=BuildStatus.STAGING)
    release = ReleaseRequest.objects.create(build=build)
    staging_give_up(release_id=release.pk, reason="TransientError: being staged elsewhere")
    build.refresh_from_db()
    release.refresh_from_db()
    assert build.status == BuildStatus.STAGING
    assert release.state == ReleaseState.FAILED


@pytest.mark.django_db
def test_giving_up_does_not_touch_a_release_that_moved_on():
    build = Build.objects.create(build_id="done123", app_id="app", status=BuildStatus.IN_REVIEW)
    release = ReleaseRequest.objects.create(build=build, state=ReleaseState.IN_REVIEW)
    staging_give_up(release_id=release.pk, reason="late failure")
    release.refresh_from_db()
    assert release.state == ReleaseState.IN_REVIEW
