"""A staging task that runs out of retries leaves a visible failure, never a silent `received`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services.intake import staging_retry
from releases.services.review import review_blocker
from releases.services.staging import staging_give_up
from selfhosted.celery import app
from tests.fakes.todesktop_origin import FakeBuild, start_origin
from tests.releases.test_staging_worker_killed import _kill, _start_worker, _wait, _worker_env

pytestmark = [pytest.mark.slow]  # starts a Celery worker


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
    other = ReleaseRequest.objects.create(build=build, state=ReleaseState.PENDING)
    Build.objects.filter(pk=build.pk).update(lease_holder=other.pk, lease_renewed_at=timezone.now())
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


@pytest.mark.django_db
def test_giving_up_fails_a_staging_build_whose_lease_lapsed(
    settings, staging_queue, django_capture_on_commit_callbacks
):
    """Nobody stages a build whose lease went stale (its worker died, or the database refused
    the write that gives the claim back): giving up fails it with the reason, so that it does
    not stay "staging" beside a failed release request, and the admin's retry takes it."""
    build = Build.objects.create(build_id="stale123", app_id="app", status=BuildStatus.STAGING)
    lapsed = timezone.now() - timedelta(seconds=settings.STAGING_LEASE_SECONDS + 1)
    Build.objects.filter(pk=build.pk).update(lease_renewed_at=lapsed)
    release = ReleaseRequest.objects.create(build=build)
    staging_give_up(release_id=release.pk, reason="OperationalError: database is locked")
    build.refresh_from_db()
    release.refresh_from_db()
    reason = "staging gave up after retries: OperationalError: database is locked"
    assert (build.status, build.failure_reason) == (BuildStatus.FAILED, reason)
    assert (release.state, release.failure_reason) == (ReleaseState.FAILED, reason)
    assert review_blocker(release=release) == "its build is failed, not staged"
    with django_capture_on_commit_callbacks(execute=True):
        assert staging_retry(releases=[release], actor="manager") == (1, [])
    assert [name for name, _ in staging_queue.tasks()] == ["releases.tasks.stage_build"]
