"""The periodic reconcile: scheduled by beat, repairs drift with an audit event
(docs/promotion.md)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from releases import tasks
from releases.models import AuditEvent, ReleaseState
from selfhosted.celery import app
from tests.promotion_support import approve, production_contents, stage_build

pytestmark = pytest.mark.django_db


def test_beat_runs_the_reconcile_task_on_the_promotion_queue():
    entry = app.conf.beat_schedule["reconcile"]

    assert entry["task"] == "releases.tasks.reconcile"
    assert app.amqp.router.route({}, "releases.tasks.reconcile")["queue"].name == "promotion"


def test_the_reconcile_task_promotes_an_approval_whose_promotion_was_lost(fs_buckets):
    build, files = stage_build("lost1")
    release = approve(build)  # approved, but its promotion task never ran

    tasks.reconcile.delay()

    contents = production_contents()
    assert {name: contents.get(name) for name in files} == files
    release.refresh_from_db()
    assert release.state == ReleaseState.LIVE
    event = AuditEvent.objects.get(kind="reconcile.repaired")
    assert event.actor == "reconcile (beat)" and event.data["copied"] == len(files)


def test_the_reconcile_task_in_sync_writes_no_audit_event(fs_buckets):
    tasks.reconcile.delay()
    events = AuditEvent.objects.count()

    tasks.reconcile.delay()

    assert AuditEvent.objects.count() == events


def test_a_release_manager_can_queue_a_reconcile_from_the_admin(
    client, fs_buckets, django_capture_on_commit_callbacks
):
    build, files = stage_build("adm2")
    approve(build)
    manager = User.objects.create_user("rm", is_staff=True)
    manager.user_permissions.set(
        Permission.objects.filter(codename__in=["view_build", "reconcile_production"])
    )
    client.force_login(manager)

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/releases/build/reconcile/")

    assert set(files) <= set(production_contents())
    assert AuditEvent.objects.get(kind="reconcile.requested").actor == "rm"
    assert AuditEvent.objects.get(kind="reconcile.repaired").actor == "rm"


def test_without_the_reconcile_permission_the_action_is_not_offered(client, fs_buckets):
    build, _ = stage_build("adm3")
    approve(build)
    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_build"))
    client.force_login(viewer)

    assert b"reconcile-button" not in client.get("/admin/releases/build/").content
    assert client.post("/admin/releases/build/reconcile/").status_code == 403

    assert production_contents() == {}
    assert not AuditEvent.objects.filter(kind="reconcile.requested").exists()
