"""Staging that a dead worker took with it is found and queued again (beat's recovery)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services.staging_recovery import staging_lost

pytestmark = pytest.mark.django_db


def _release(build_id: str, status: str, *, idle: float, state: str = ReleaseState.PENDING):
    build = Build.objects.create(build_id=build_id, app_id="app1", status=status)
    release = ReleaseRequest.objects.create(build=build, payload={"buildId": build_id}, state=state)
    then = timezone.now() - timedelta(seconds=idle)
    Build.objects.filter(pk=build.pk).update(updated_at=then)
    ReleaseRequest.objects.filter(pk=release.pk).update(updated_at=then)
    return release


def test_pending_releases_nobody_works_on_are_queued_again_once_per_lease(settings):
    settings.STAGING_LEASE_SECONDS = 120
    lost = [
        _release("recv1", BuildStatus.RECEIVED, idle=300),  # its task was lost before it ran
        _release("stag1", BuildStatus.STAGING, idle=300),  # its worker died mid-download
        _release("done1", BuildStatus.STAGED, idle=300),  # died before the review opened
    ]
    fresh = [
        _release("busy1", BuildStatus.STAGING, idle=10),  # a live worker renews its lease
        _release("new01", BuildStatus.RECEIVED, idle=10),  # just received, its task is queued
    ]
    _release("open1", BuildStatus.IN_REVIEW, idle=300, state=ReleaseState.IN_REVIEW)
    _release("fail1", BuildStatus.FAILED, idle=300, state=ReleaseState.FAILED)

    assert sorted(staging_lost()) == sorted(r.pk for r in lost)
    assert staging_lost() == []  # queued: not again within the next lease period
    later = timezone.now() + timedelta(seconds=121)  # nobody touched any of them since
    assert sorted(staging_lost(now=later)) == sorted(r.pk for r in lost + fresh)

    events = AuditEvent.objects.filter(kind="staging.requeued", release=lost[1])
    assert events.count() == 2
    assert "stag1 is staging and no worker has touched it for 300s" in events.first().message


def test_the_beat_task_queues_the_lost_staging_which_then_opens_the_review(settings):
    """The task runs eagerly here: the lost release is staged again and reaches review."""
    from releases.tasks import staging_recover

    settings.STAGING_LEASE_SECONDS = 120
    release = _release("done2", BuildStatus.STAGED, idle=300)

    staging_recover()

    release.refresh_from_db()
    assert release.state == ReleaseState.IN_REVIEW
    assert release.build.status == BuildStatus.IN_REVIEW
