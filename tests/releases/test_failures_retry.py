"""Every failure leaves a build and a release request that name the reason, and the retry the
README documents brings the release on (issue 13).

Each test walks one failure point from the outside: a signed webhook, then the admin's actions,
the API or a management command, as a release manager would (README: Operations, API).
"""

from __future__ import annotations

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from releases.integrations import buckets
from releases.models import AuditEvent, BuildStatus, ReleaseRequest, ReleaseState
from releases.roles import roles_sync
from selfhosted.celery import app
from tests.webhook_support import broker_closed, payload, post

pytestmark = pytest.mark.usefixtures("fs_buckets", "webhook_settings")
RELEASES = reverse("admin:releases_releaserequest_changelist")
BUILDS = reverse("admin:releases_build_changelist")
RECONCILE = reverse("admin:releases_build_reconcile")


@pytest.fixture
def origin_settings():
    return {"HTTP_MAX_RETRIES": 0}


def release_manager(client) -> User:
    # A transactional test's flush empties the groups the migrations made: make them again,
    # as the migrations do.
    roles_sync(django_apps)
    user = User.objects.create_user("mona", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="release managers"))
    client.force_login(user)
    return user


def admin_action(client, changelist: str, action: str, rows, capture) -> list[str]:
    data = {"action": action, "_selected_action": [row.pk for row in rows]}
    with capture(execute=True):
        response = client.post(changelist, data, follow=True)
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def reconcile_from_the_admin(client, capture) -> None:
    """The build list's "Reconcile production now" button; the queued run executes on commit."""
    with capture(execute=True) as callbacks:
        response = client.post(RECONCILE, follow=True)
    assert (response.status_code, response.redirect_chain) == (200, [(BUILDS, 302)])
    assert "releases.tasks.reconcile" in [getattr(c, "task", "") for c in callbacks]
    assert [str(m) for m in response.context["messages"]] == [
        "reconcile queued; its result appears in the audit trail"
    ]
    assert AuditEvent.objects.filter(kind="reconcile.requested", actor="mona").exists()


def the_release() -> ReleaseRequest:
    return ReleaseRequest.objects.select_related("build").get()


def failed_with(release: ReleaseRequest, kind: str) -> str:
    """The reason, which the release, its build and the failure's audit event all name."""
    assert release.state == ReleaseState.FAILED
    assert release.failure_reason
    [event] = AuditEvent.objects.filter(release=release, kind=kind)
    assert release.failure_reason in event.message
    return release.failure_reason


@pytest.mark.django_db
def test_a_verification_mismatch_names_the_file_and_the_admins_retry_stages_it(
    client, origin, settings, django_capture_on_commit_callbacks
):
    settings.REVIEW_BACKEND = "admin"
    name = origin.build.layout["linux"]["appImage"]["x64"]
    origin.corrupt(name)  # ToDesktop serves a damaged copy: the manifest's sha512 does not match
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, payload()).status_code == 202

    release = the_release()
    reason = failed_with(release, "staging.failed")
    assert name in reason and "sha512" in reason
    assert (release.build.status, release.build.failure_reason) == (BuildStatus.FAILED, reason)

    origin._corrupt.clear()  # ToDesktop serves the right bytes again
    release_manager(client)
    messages = admin_action(
        client, RELEASES, "retry_staging", [release], django_capture_on_commit_callbacks
    )
    assert messages == ["queued staging of 1 release(s) again"]
    release = the_release()
    assert (release.state, release.failure_reason) == (ReleaseState.IN_REVIEW, "")
    assert (release.build.status, release.build.failure_reason) == (BuildStatus.IN_REVIEW, "")
    assert buckets.staging().exists(f"{release.build.build_id}/{name}")


@pytest.mark.django_db
def test_a_review_that_could_not_open_names_githubs_answer_and_the_admins_retry_opens_it(
    client, origin, fake_github, settings, django_capture_on_commit_callbacks
):
    token, settings.GITHUB_TOKEN = settings.GITHUB_TOKEN, "ghp_revoked"
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, payload()).status_code == 202

    release = the_release()
    reason = failed_with(release, "review.failed")
    assert reason == "GitHub 401: Bad credentials"
    # The files are staged and verified: the build stays usable and names the reason.
    assert release.build.status == BuildStatus.STAGED
    assert release.build.failure_reason == f"review failed: {reason}"
    assert fake_github.pulls() == []

    settings.GITHUB_TOKEN = token  # the token is renewed
    release_manager(client)
    admin_action(client, RELEASES, "retry_review", [release], django_capture_on_commit_callbacks)
    release = the_release()
    assert (release.state, release.failure_reason) == (ReleaseState.IN_REVIEW, "")
    assert (release.build.status, release.build.failure_reason) == (BuildStatus.IN_REVIEW, "")
    [pull] = fake_github.pulls()
    assert pull["number"] == release.pr_number


def api_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).secret}")
    return client


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_at_enqueue_is_named_and_the_apis_retry_queues_staging(
    client, origin, settings, staging_queue
):
    settings.REVIEW_BACKEND = "admin"
    with broker_closed():
        response = post(client, payload())
    assert response.status_code == 202
    release = the_release()
    reason = failed_with(release, "staging.queue_failed")
    assert reason.startswith("could not queue staging: ")
    assert response.json()["failure_reason"] == reason
    assert (release.build.status, release.build.failure_reason) == (BuildStatus.FAILED, reason)
    assert len(staging_queue) == 0

    api = api_client(release_manager(client))
    answer = api.post(f"/api/releases/{release.pk}/retry-staging/")
    assert answer.status_code == 202
    [(task, args)] = staging_queue.tasks()
    assert (task, args) == ("releases.tasks.stage_build", [release.pk])
    app.tasks[task].apply(args=args)  # what the staging worker does with it
    release = the_release()
    assert (release.state, release.failure_reason) == (ReleaseState.IN_REVIEW, "")
    assert (release.build.status, release.build.failure_reason) == (BuildStatus.IN_REVIEW, "")


@pytest.mark.django_db
def test_a_promotion_that_fails_is_named_and_reconcile_in_the_admin_makes_it_live(
    client, origin, settings, django_capture_on_commit_callbacks
):
    settings.REVIEW_BACKEND = "admin"
    settings.REQUIRED_APPROVALS = 1
    with django_capture_on_commit_callbacks(execute=True):
        post(client, payload())
    release = the_release()
    assert release.state == ReleaseState.IN_REVIEW

    settings.MIN_FREE_DISK_BYTES = 1 << 60  # production's disk is full
    release_manager(client)
    admin_action(
        client, RELEASES, "approve_releases", [release], django_capture_on_commit_callbacks
    )
    release = the_release()
    reason = failed_with(release, "promotion.failed")
    assert reason.startswith("promotion failed: ") and "MIN_FREE_DISK_BYTES" in reason
    assert release.merged_by == "mona"  # still accepted: a withdrawal or a reconcile decides
    assert (release.build.status, release.build.failure_reason) == (BuildStatus.APPROVED, reason)

    # A second failure of the periodic reconcile does not repeat the event.
    with pytest.raises(Exception, match="MIN_FREE_DISK_BYTES"):
        call_command("reconcile")
    assert AuditEvent.objects.filter(kind="promotion.failed", release=release).count() == 1

    settings.MIN_FREE_DISK_BYTES = 0  # room again
    reconcile_from_the_admin(client, django_capture_on_commit_callbacks)
    release = the_release()
    assert (release.state, release.failure_reason) == (ReleaseState.LIVE, "")
    assert (release.build.status, release.build.failure_reason) == (BuildStatus.LIVE, "")
    assert buckets.production().exists("desktop-builds.json")


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
def test_staging_that_gave_up_is_named_and_the_apis_retry_stages_it(
    client, origin, staging_queue, tmp_path
):
    """A real staging worker: ToDesktop answers 503 until the task's retries run out."""
    from tests.releases.test_staging_worker_killed import _kill, _start_worker, _wait, _worker_env

    for document in origin.documents:
        origin.fail(document, times=10_000, status=503)
    env = _worker_env(origin.url, tmp_path)
    env.update(
        {"TASK_MAX_RETRIES": "1", "TASK_RETRY_BACKOFF_SECONDS": "1", "HTTP_MAX_RETRIES": "0"}
    )
    worker = _start_worker(env, tmp_path / "worker.log")
    try:
        post(client, payload())

        def state_is(state: str):
            return lambda: the_release().state == state

        _wait(state_is(ReleaseState.FAILED), 60, "staging to give up")
        # Whoever sees the failed state finds its event too (one transaction).
        release = the_release()
        reason = failed_with(release, "staging.failed")
        assert reason.startswith("staging gave up after retries: ") and "503" in reason
        assert (release.build.status, release.build.failure_reason) == (BuildStatus.FAILED, reason)

        origin._fail.clear()  # ToDesktop is back
        api = api_client(release_manager(client))
        assert api.post(f"/api/releases/{release.pk}/retry-staging/").status_code == 202
        _wait(state_is(ReleaseState.IN_REVIEW), 60, "the retried staging to open the review")
    finally:
        _kill(worker)
    release = the_release()
    assert release.failure_reason == ""
    assert (release.build.status, release.build.failure_reason) == (BuildStatus.IN_REVIEW, "")
    assert AuditEvent.objects.filter(release=release, kind="staging.retry").count() == 1


@pytest.mark.django_db
def test_a_build_promotion_refused_is_staged_again_from_the_admin_then_reconciled_live(
    client, origin, settings, django_capture_on_commit_callbacks
):
    settings.REVIEW_BACKEND = "admin"
    settings.REQUIRED_APPROVALS = 1
    with django_capture_on_commit_callbacks(execute=True):
        post(client, payload())
    release = the_release()
    staging = buckets.staging()
    for info in staging.list(release.build.staging_prefix):
        staging.delete(info.key)  # the staged files are lost (a disk, a hand)

    release_manager(client)
    admin_action(
        client, RELEASES, "approve_releases", [release], django_capture_on_commit_callbacks
    )
    release = the_release()
    reason = release.failure_reason
    assert release.state == ReleaseState.FAILED
    build_id = release.build.build_id
    assert reason == f"cannot promote build {build_id}: no files under {build_id}/ in staging"
    assert (release.build.status, release.build.failure_reason) == (BuildStatus.FAILED, reason)
    assert AuditEvent.objects.filter(kind="promotion.failed", build=release.build).count() == 1

    messages = admin_action(
        client, RELEASES, "retry_staging", [release], django_capture_on_commit_callbacks
    )
    assert messages == ["queued staging of 1 release(s) again"]
    release = the_release()
    # The build is staged again; its accepted release is not sent back to review.
    assert release.build.status == BuildStatus.STAGED
    assert release.state == ReleaseState.FAILED
    retried = AuditEvent.objects.get(kind="staging.retry").sequence
    assert not AuditEvent.objects.filter(kind__startswith="review.", sequence__gt=retried)

    reconcile_from_the_admin(client, django_capture_on_commit_callbacks)
    release = the_release()
    assert (release.state, release.failure_reason) == (ReleaseState.LIVE, "")
    assert (release.build.status, release.build.failure_reason) == (BuildStatus.LIVE, "")
