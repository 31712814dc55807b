"""Sensitive account actions in the audit chain, login throttling, and the chain's status."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.db import connection
from rest_framework.authtoken.models import Token

from releases.models import AuditEvent
from releases.services.audit import audit_chain_check, audit_record, audit_verify
from tests.factories import make_build

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/?next=/admin/"


def kinds(prefix: str = "auth.") -> list[str]:
    return list(
        AuditEvent.objects.filter(kind__startswith=prefix)
        .order_by("sequence")
        .values_list("kind", flat=True)
    )


def staff(name: str = "ann") -> User:
    return User.objects.create_user(name, password="right-password", is_staff=True)


def test_a_login_and_a_logout_are_one_event_each(client):
    staff()
    before = AuditEvent.objects.count()

    client.post(LOGIN, {"username": "ann", "password": "right-password"})
    client.post("/admin/logout/")

    assert kinds()[-2:] == ["auth.login", "auth.logout"]
    assert AuditEvent.objects.count() == before + 2
    assert AuditEvent.objects.get(kind="auth.login").actor == "ann"


def test_a_failed_login_is_one_event_without_the_password(client):
    staff()
    before = AuditEvent.objects.count()

    client.post(LOGIN, {"username": "ann", "password": "wrong-guess-123"})

    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.get(kind="auth.login_failed")
    assert event.actor == "ann" and event.data == {"ip": "127.0.0.1", "locked_out": False}
    assert "wrong-guess-123" not in event.canonical()


def test_repeated_failures_lock_the_user_out_once_even_with_the_right_password(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    staff()

    for _ in range(3):
        client.post(LOGIN, {"username": "ann", "password": "nope"})
    refused = client.post(LOGIN, {"username": "ann", "password": "right-password"})

    assert refused.status_code == 429
    assert kinds().count("auth.locked_out") == 1
    assert "auth.login" not in kinds()
    locked = AuditEvent.objects.get(kind="auth.locked_out")
    assert locked.data == {"ip": "127.0.0.1", "failures": 3}


def test_the_lockout_is_per_user_name_and_address(client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    staff("ann")
    staff("bob")
    for _ in range(2):
        client.post(LOGIN, {"username": "ann", "password": "nope"})

    answer = client.post(LOGIN, {"username": "bob", "password": "right-password"})

    assert answer.status_code == 302 and kinds()[-1] == "auth.login"


def test_token_creation_and_deletion_are_recorded_without_the_key():
    user = staff()
    before = AuditEvent.objects.count()

    token = Token.objects.create(user=user)
    secret, digest = token.secret, token.key
    token.delete()

    assert AuditEvent.objects.count() == before + 2
    assert kinds()[-2:] == ["auth.token_created", "auth.token_deleted"]
    trail = "".join(e.canonical() for e in AuditEvent.objects.all())
    assert secret not in trail and digest not in trail


def test_group_and_permission_changes_are_one_event_each_with_the_actor(admin_client):
    ann = staff()
    before = AuditEvent.objects.count()

    answer = admin_client.post(
        f"/admin/auth/user/{ann.pk}/change/",
        {
            "username": "ann",
            "is_active": "on",
            "is_staff": "on",
            "groups": [Group.objects.get(name="approvers").pk],
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    assert answer.status_code == 302
    [event] = AuditEvent.objects.filter(sequence__gt=before)
    assert event.kind == "auth.groups_changed" and event.actor == "admin"
    assert event.message == "user ann: groups added: approvers"


def test_a_user_change_records_what_changed_and_never_the_password_hash():
    ann = staff()
    ann.is_superuser = True
    ann.set_password("another-password")
    ann.save()

    event = AuditEvent.objects.filter(kind="auth.user_changed").get()
    assert event.data == {"is_superuser": [False, True], "password": "changed"}
    assert ann.password not in event.canonical()


def test_the_chain_still_verifies_after_all_of_that(client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    ann = staff()
    client.post(LOGIN, {"username": "ann", "password": "right-password"})
    for _ in range(2):
        client.post(LOGIN, {"username": "bob", "password": "x"})
    Token.objects.create(user=ann)
    ann.groups.add(Group.objects.get(name="auditors"))

    assert audit_verify().ok
    call_command("audit_verify")


def _forge(sequence: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE releases_auditevent SET message = 'forged' WHERE sequence = %s", [sequence]
        )


def test_a_forged_row_is_named_once_then_still_broken_and_marked_on_its_page(admin_client):
    build = make_build()
    first = audit_record(kind="staging.started", message="a", build=build)
    audit_record(kind="staging.done", message="b", build=build)
    assert audit_chain_check(actor="beat").ok
    _forge(first.sequence)

    audit_chain_check(actor="beat")
    audit_chain_check(actor="beat")

    assert kinds("audit.") == [
        "audit.chain_checked",
        "audit.chain_broken",
        "audit.chain_still_broken",
    ]
    broken = AuditEvent.objects.get(kind="audit.chain_broken")
    assert broken.data["first_broken"] == first.sequence
    index = admin_client.get("/admin/").content.decode()
    listing = admin_client.get("/admin/releases/auditevent/").content.decode()
    row = admin_client.get(f"/admin/releases/auditevent/{first.pk}/change/").content.decode()
    for page in (index, listing):
        assert 'id="chain-broken"' in page and f">#{first.sequence}</a>" in page
    assert 'id="row-broken"' in row and "does not match its hash" in row


def test_only_the_first_break_notifies():
    from releases.services.notifications import notification_kind

    assert notification_kind("audit.chain_broken") == "audit.chain_broken"
    assert notification_kind("audit.chain_still_broken") is None
    assert notification_kind("auth.locked_out") == "login.locked_out"


def test_an_intact_chain_says_up_to_which_row_and_when(admin_client):
    audit_record(kind="x.y", message="m")
    admin_client.post("/admin/releases/auditevent/check/")

    page = admin_client.get("/admin/releases/auditevent/").content.decode()

    checked = AuditEvent.objects.get(kind="audit.chain_checked")
    assert f"Audit chain intact up to #{checked.data['last']}" in page
    assert checked.actor == "admin"


def test_the_audit_list_is_newest_first_to_the_second_and_folds_staged_files(admin_client):
    build = make_build(build_id="fold1")
    for name in ("a.exe", "b.exe", "c.yml"):
        audit_record(kind="staging.file_staged", message=name, build=build, data={"name": name})
    last = audit_record(kind="staging.done", message="staged", build=build)

    page = admin_client.get("/admin/releases/auditevent/").content.decode()
    each = admin_client.get("/admin/releases/auditevent/?kind=staging.file_staged").content

    assert page.index(f"#{last.sequence}<") < page.index("3 files staged")
    row = 'title="staging.file_staged">staging.file_staged</span></td>'  # the kind column
    assert page.count(row) == 1
    assert each.decode().count(row) == 3
    assert last.created_at.isoformat(timespec="seconds") in page  # 2026-…T…:…:…+00:00


def test_the_audit_list_filters_by_actor_build_and_date_range(admin_client):
    build = make_build(build_id="filt1")
    audit_record(kind="x.one", message="by ann", actor="ann", build=build)
    audit_record(kind="x.two", message="by bob", actor="bob")
    base = "/admin/releases/auditevent/"

    by_ann = admin_client.get(f"{base}?actor=ann").content.decode()
    by_build = admin_client.get(f"{base}?build__build_id=filt1").content.decode()
    future = admin_client.get(f"{base}?created_at__gte=2999-01-01").content.decode()

    assert "by ann" in by_ann and "by bob" not in by_ann
    assert "by ann" in by_build and "by bob" not in by_build
    assert "by ann" not in future and "by bob" not in future


def test_the_event_page_links_the_previous_event(admin_client):
    first = audit_record(kind="x.one", message="one")
    second = audit_record(kind="x.two", message="two", data={"long": "y" * 300})

    page = admin_client.get(f"/admin/releases/auditevent/{second.pk}/change/").content.decode()

    assert f'/admin/releases/auditevent/{first.pk}/change/">#{first.sequence} x.one</a>' in page
    assert "white-space:pre-wrap" in page


def test_loading_a_fixture_of_accounts_records_no_account_events(tmp_path):
    """`loaddata` restores rows (raw saves, then their memberships): no person did anything,
    and the chain goes on from its last event."""
    group = Group.objects.create(name="restored")
    group.permissions.add(Permission.objects.get(codename="view_build"))
    user = staff("rita")
    user.groups.add(group)
    fixture = tmp_path / "accounts.json"
    call_command("dumpdata", "auth.group", "auth.user", output=str(fixture), verbosity=0)
    last = AuditEvent.objects.order_by("sequence").last()
    with connection.cursor() as cursor:  # the restore brings the memberships back
        cursor.execute("DELETE FROM auth_user_groups")
        cursor.execute("DELETE FROM auth_group_permissions WHERE group_id = %s", [group.pk])

    call_command("loaddata", str(fixture), verbosity=0)

    assert AuditEvent.objects.order_by("sequence").last() == last
    assert list(User.objects.get(username="rita").groups.all()) == [group]
    assert group.permissions.count() == 1
    # A person's change after the restore is recorded as before.
    user.groups.remove(group)
    assert kinds()[-1] == "auth.groups_changed"
    assert audit_verify().ok
