"""Nobody, superusers included, changes or deletes audit rows through the admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from releases.models import AuditEvent
from releases.services.audit import audit_record
from tests.factories import make_build

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    return audit_record(kind="webhook.received", message="accepted", build=make_build())


def test_a_superuser_sees_the_event_but_cannot_change_it(admin_client, event):
    url = reverse("admin:releases_auditevent_change", args=[event.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    assert b"accepted" in page.content
    assert b'name="_save"' not in page.content
    answer = admin_client.post(url, {"message": "rewritten", "kind": "x"})
    assert answer.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).message == "accepted"


def test_a_superuser_cannot_delete_an_event(admin_client, event):
    url = reverse("admin:releases_auditevent_delete", args=[event.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:releases_auditevent_changelist")
    answer = admin_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    assert answer.status_code in (200, 302)
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_admin_cannot_add_events(admin_client):
    assert admin_client.get(reverse("admin:releases_auditevent_add")).status_code == 403


@pytest.mark.parametrize(
    "model", ["build", "buildfile", "releaserequest", "webhookdelivery", "auditevent"]
)
def test_every_changelist_renders(admin_client, event, model):
    assert admin_client.get(reverse(f"admin:releases_{model}_changelist")).status_code == 200


def test_the_build_page_shows_its_timeline_and_payload(admin_client, event):
    from tests.factories import make_release

    make_release(event.build, payload={"buildId": event.build.build_id, "appVersion": "9.8.7"})
    page = admin_client.get(reverse("admin:releases_build_change", args=[event.build.pk]))
    assert page.status_code == 200
    assert b"webhook.received" in page.content
    assert b"&quot;appVersion&quot;: &quot;9.8.7&quot;" in page.content


def test_the_migrations_create_the_auditor_approver_and_release_manager_groups():
    from django.contrib.auth.models import Group

    managers = Group.objects.get(name="release managers")
    codenames = set(managers.permissions.values_list("codename", flat=True))
    assert {"retry_build", "rollback_build", "reconcile_production", "approve_release"} <= codenames
    auditors = Group.objects.get(name="auditors")
    assert set(auditors.permissions.values_list("codename", flat=True)) >= {
        "view_build",
        "view_auditevent",
    }
    approvers = set(
        Group.objects.get(name="approvers").permissions.values_list("codename", flat=True)
    )
    assert "approve_release" in approvers and "reconcile_production" not in approvers
    assert not Group.objects.filter(name="reviewers").exists()
    assert not any(c.startswith(("change_", "delete_")) for c in codenames)
