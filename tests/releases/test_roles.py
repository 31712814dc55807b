"""The README's role table (auditors, approvers, release managers), row by row, through the
admin and through the API."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from releases.models import Approval, AuditEvent, ReleaseRequest, ReleaseState
from tests.factories import make_build, make_release

pytestmark = pytest.mark.django_db
ROLES = ["auditors", "approvers", "release managers"]
# The README's table: which role may do what.
TABLE = {
    "read": {"auditors", "approvers", "release managers"},
    "decide": {"approvers", "release managers"},
    "retry": {"release managers"},
    "rollback": {"release managers"},
    "reconcile": {"release managers"},
    "withdraw": {"release managers"},
    "adoption": {"auditors", "approvers", "release managers"},
    "halt": {"release managers"},
}


def person(role: str) -> User:
    user = User.objects.create_user(role.replace(" ", "-"), is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def api(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).secret}")
    return client


def actions_offered(client, url: str) -> str:
    return client.get(url).content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_reading(role, client):
    user = person(role)
    client.force_login(user)
    allowed = role in TABLE["read"]
    assert (client.get("/admin/releases/auditevent/").status_code == 200) is allowed
    assert (api(user).get("/api/events/").status_code == 200) is allowed


@pytest.mark.parametrize("role", ROLES)
def test_deciding(role, client, fs_buckets):
    user = person(role)
    allowed = role in TABLE["decide"]
    by_api = make_release(state=ReleaseState.IN_REVIEW)
    by_admin = make_release(state=ReleaseState.IN_REVIEW)

    answer = api(user).post(f"/api/releases/{by_api.pk}/reject/", {"comment": "no"}, "json")
    client.force_login(user)
    client.post(
        f"/admin/releases/releaserequest/{by_admin.pk}/decide/",
        {"decision": "reject", "comment": "no", "confirm": "yes"},
    )

    assert answer.status_code == (200 if allowed else 403)
    assert Approval.objects.filter(release=by_admin).exists() is allowed


@pytest.mark.parametrize("role", ROLES)
def test_retrying(role, client):
    user = person(role)
    allowed = role in TABLE["retry"]
    release = make_release(state=ReleaseState.FAILED)

    answer = api(user).post(f"/api/releases/{release.pk}/retry-staging/")
    client.force_login(user)
    page = actions_offered(client, "/admin/releases/releaserequest/")

    assert (answer.status_code == 202) is allowed and (answer.status_code == 403) is not allowed
    assert ('value="retry_staging"' in page) is allowed


@pytest.mark.parametrize("role", ROLES)
def test_opening_a_rollback(role, client, fs_buckets):
    user = person(role)
    allowed = role in TABLE["rollback"]
    build = make_build(status="live")
    client.force_login(user)

    assert ('value="rollback_to_build"' in actions_offered(client, "/admin/releases/build/")) is (
        allowed
    )
    client.post(
        "/admin/releases/build/", {"action": "rollback_to_build", "_selected_action": [build.pk]}
    )
    assert ReleaseRequest.objects.filter(kind="rollback").exists() is allowed


@pytest.mark.parametrize("role", ROLES)
def test_reconciling(role, client, fs_buckets, django_capture_on_commit_callbacks):
    user = person(role)
    allowed = role in TABLE["reconcile"]
    client.force_login(user)

    with django_capture_on_commit_callbacks(execute=True):
        admin_answer = client.post("/admin/releases/build/reconcile/")
        api_answer = api(user).post("/api/reconcile/")

    assert admin_answer.status_code == (302 if allowed else 403)
    assert api_answer.status_code == (202 if allowed else 403)
    assert AuditEvent.objects.filter(kind="reconcile.requested").count() == (2 if allowed else 0)


@pytest.mark.parametrize("role", ROLES)
def test_withdrawing(role, client, fs_buckets):
    user = person(role)
    allowed = role in TABLE["withdraw"]
    release = make_release(state=ReleaseState.APPROVED)

    answer = api(user).post(f"/api/releases/{release.pk}/withdraw/", {"reason": "x"}, "json")
    client.force_login(user)
    page = actions_offered(client, "/admin/releases/releaserequest/")

    assert (answer.status_code != 403) is allowed
    assert ('value="withdraw_releases"' in page) is allowed


@pytest.mark.parametrize("role", ROLES)
def test_seeing_adoption(role, client):
    user = person(role)
    client.force_login(user)
    allowed = role in TABLE["adoption"]
    assert (client.get("/admin/adoption/adoptioncount/").status_code == 200) is allowed
    assert (api(user).get("/api/adoption/?build=b1").status_code == 200) is allowed


@pytest.mark.parametrize("role", ROLES)
def test_halting_a_rollout(role, client, fs_buckets):
    """The Halt form is offered to, and accepted from, release managers only (a halt of a build
    that rolls out nowhere is refused after the permission check, so it changes nothing)."""
    user = person(role)
    client.force_login(user)
    allowed = role in TABLE["halt"]
    page = client.get("/admin/adoption/adoptioncount/").content
    answer = client.post("/admin/adoption/adoptioncount/", {"build_id": "b1", "reason": "x"})
    assert (b"Halt (0% now)" in page or answer.status_code != 403) is allowed
    assert (answer.status_code == 403) is not allowed
    assert not AuditEvent.objects.filter(kind="rollout.halted").exists()


@pytest.mark.django_db(transaction=True)
def test_syncing_the_roles_with_the_project_apps_keeps_flush_recreating_permissions():
    """The demo syncs the roles with the project's own app registry; afterwards `flush` (and
    `migrate`) must still re-create every app's content types and permissions."""
    from django.apps import apps
    from django.contrib.auth.models import Permission
    from django.core.management import call_command

    from releases.roles import roles_sync

    roles_sync(apps)
    assert (
        Group.objects.get(name="auditors")
        .permissions.filter(codename="view_adoptioncount")
        .exists()
    )
    call_command("flush", interactive=False, verbosity=0)
    assert Permission.objects.filter(
        content_type__app_label="adoption", codename="view_adoptioncount"
    ).exists()
    assert Permission.objects.filter(
        content_type__app_label="releases", codename="approve_release"
    ).exists()
