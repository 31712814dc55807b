"""The admin's "Retry staging" action on release requests (docs/audit.md: release managers
retry)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.messages import get_messages
from django.urls import reverse

from releases.models import AuditEvent, BuildStatus, ReleaseState
from tests.factories import make_build, make_release

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:releases_releaserequest_changelist")
STAGE = "releases.tasks.stage_build"


def login(client, group: str) -> User:
    user = User.objects.create_user(f"{group.replace(' ', '-')}-1", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return user


def failed_release(**release_fields):
    build = make_build(status=BuildStatus.FAILED, failure_reason="sha512 mismatch")
    fields = {"state": ReleaseState.FAILED, "failure_reason": "sha512 mismatch", **release_fields}
    return make_release(build, **fields)


@pytest.fixture
def retry(client, staging_queue, django_capture_on_commit_callbacks):
    def run(*releases):
        data = {"action": "retry_staging", "_selected_action": [r.pk for r in releases]}
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(CHANGELIST, data, follow=True)
        assert response.status_code == 200
        return [str(m) for m in get_messages(response.wsgi_request)]

    return run


def test_a_release_manager_requeues_staging_of_a_failed_build(client, retry, staging_queue):
    user = login(client, "release managers")
    release = failed_release()
    messages = retry(release)
    assert messages == ["queued staging of 1 release(s) again"]
    assert staging_queue.tasks() == [(STAGE, [release.pk])]
    release.refresh_from_db()
    release.build.refresh_from_db()
    assert (release.build.status, release.build.failure_reason) == (BuildStatus.RECEIVED, "")
    assert (release.state, release.failure_reason) == (ReleaseState.PENDING, "")
    [event] = AuditEvent.objects.filter(kind="staging.retry")
    assert (event.actor, event.release) == (user.username, release)


def test_a_release_that_did_not_fail_is_not_retried(client, retry, staging_queue):
    login(client, "release managers")
    live = make_release(make_build(status=BuildStatus.LIVE), state=ReleaseState.LIVE)
    messages = retry(live)
    assert messages == [f"not retried: #{live.pk} (build live, live)"]
    assert len(staging_queue) == 0
    assert not AuditEvent.objects.exclude(kind__startswith="auth.").exists()  # only the login


def test_a_failed_request_of_a_staged_build_is_retried(client, retry, staging_queue):
    login(client, "release managers")
    release = make_release(make_build(status=BuildStatus.STAGED), state=ReleaseState.FAILED)
    retry(release)
    assert staging_queue.tasks() == [(STAGE, [release.pk])]
    release.refresh_from_db()
    assert release.state == ReleaseState.PENDING
    assert release.build.status == BuildStatus.STAGED


def test_retrying_twice_queues_one_run(client, retry, staging_queue):
    login(client, "release managers")
    release = failed_release()
    retry(release)
    assert retry(release) == [f"not retried: #{release.pk} (build received, pending)"]
    assert len(staging_queue) == 1


def test_a_mixed_selection_reports_both(client, retry, staging_queue):
    login(client, "release managers")
    failed = failed_release()
    fine = make_release(make_build(status=BuildStatus.IN_REVIEW), state=ReleaseState.IN_REVIEW)
    messages = retry(failed, fine)
    assert messages == [
        "queued staging of 1 release(s) again",
        f"not retried: #{fine.pk} (build in_review, in_review)",
    ]
    assert staging_queue.tasks() == [(STAGE, [failed.pk])]


def test_a_reviewer_cannot_retry(client, retry, staging_queue):
    login(client, "auditors")
    release = failed_release()
    page = client.get(CHANGELIST)
    assert b"retry_staging" not in page.content
    retry(release)
    assert len(staging_queue) == 0
    release.build.refresh_from_db()
    assert release.build.status == BuildStatus.FAILED


def test_a_release_manager_sees_the_action(client):
    login(client, "release managers")
    failed_release()
    assert b'value="retry_staging"' in client.get(CHANGELIST).content
