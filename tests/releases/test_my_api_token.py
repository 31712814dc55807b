"""My API token (/admin/my-api-token/): a staff user creates, rotates and revokes their own
API token; the key is shown once, works against the API, and never reaches the trail."""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from releases.models import AuditEvent
from releases.services.api_tokens import token_digest

pytestmark = pytest.mark.django_db
PAGE = "/admin/my-api-token/"
KEY = re.compile(r'<code id="new-key">([0-9a-f]{40})</code>')


def auditor(name: str = "ann", *, staff: bool = True) -> User:
    user = User.objects.create_user(name, password="a-long-test-password", is_staff=staff)
    user.groups.add(Group.objects.get(name="auditors"))
    return user


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api_status(key: str) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api.get("/api/builds/").status_code


def shown_key(answer) -> str:
    assert answer.status_code == 200, answer.content[:300]
    found = KEY.search(answer.content.decode())
    assert found, "the new key is not on the page"
    return found.group(1)


def seen(user: User) -> str:
    """The form's `created` field, as the page renders it."""
    return Token.objects.get(user=user).created.isoformat()


def events_after(sequence: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(sequence__gt=sequence).order_by("sequence"))


def last_sequence() -> int:
    last = AuditEvent.objects.order_by("-sequence").first()
    return last.sequence if last else 0


def trail_text() -> str:
    return "".join(event.canonical() for event in AuditEvent.objects.all())


def test_the_admin_links_to_the_page_from_its_user_tools():
    answer = logged_in(auditor()).get("/admin/")

    assert answer.status_code == 200
    assert b'<a href="/admin/my-api-token/" id="my-api-token-link">My API token</a>' in (
        answer.content
    )


def test_get_without_a_token_offers_to_create_one_and_changes_nothing():
    client, before = logged_in(auditor()), last_sequence()

    answer = client.get(PAGE)

    assert answer.status_code == 200
    assert b"You have no API token." in answer.content
    assert b'id="create-button"' in answer.content
    assert not Token.objects.exists() and events_after(before) == []


def test_get_with_a_token_shows_when_it_was_created_never_its_key_and_changes_nothing():
    ann = auditor()
    token = Token.objects.create(user=ann)
    client, before = logged_in(ann), last_sequence()

    answer = client.get(PAGE)

    assert answer.status_code == 200
    assert token.secret.encode() not in answer.content and token.key.encode() not in answer.content
    assert token.created.strftime("%Y-%m-%d %H:%M:%S").encode() in answer.content
    assert b'id="rotate-button"' in answer.content and b'id="revoke-button"' in answer.content
    assert Token.objects.get().key == token.key and events_after(before) == []


def test_create_shows_the_key_once_and_it_works_against_the_api(caplog):
    ann = auditor()
    client, before = logged_in(ann), last_sequence()
    assert b"My API token" in client.get(PAGE).content  # a first look records nothing

    with caplog.at_level(logging.DEBUG):
        answer = client.post(PAGE, {"action": "create"})
    key = shown_key(answer)

    assert "no-store" in answer["Cache-Control"]
    assert Token.objects.get(user=ann).key == token_digest(key)
    assert api_status(key) == 200
    assert key.encode() not in client.get(PAGE).content  # never again
    [event] = events_after(before)
    assert (event.kind, event.actor, event.message) == (
        "auth.token_created",
        "ann",
        "API token of ann created",
    )
    assert key not in trail_text() and key not in caplog.text
    assert token_digest(key) not in trail_text() and token_digest(key) not in caplog.text


def test_the_token_carries_its_users_permissions_and_nothing_more():
    nobody = User.objects.create_user("ned", password="a-long-test-password", is_staff=True)

    key = shown_key(logged_in(nobody).post(PAGE, {"action": "create"}))

    assert api_status(key) == 403  # in no group: staff alone reads nothing


def test_rotate_replaces_the_key_and_the_old_one_stops_working_at_once(caplog):
    ann = auditor()
    client = logged_in(ann)
    old = shown_key(client.post(PAGE, {"action": "create"}))
    before = last_sequence()

    with caplog.at_level(logging.DEBUG):
        answer = client.post(PAGE, {"action": "rotate", "created": seen(ann)})
    new = shown_key(answer)

    assert new != old and b"the old key no longer works" in answer.content
    assert api_status(old) == 401 and api_status(new) == 200
    assert list(Token.objects.values_list("key", flat=True)) == [token_digest(new)]
    [event] = events_after(before)
    assert (event.kind, event.actor, event.message, event.data) == (
        "auth.token_rotated",
        "ann",
        "API token of ann rotated",
        {"user": "ann"},
    )
    assert old not in trail_text() and new not in trail_text()
    assert token_digest(old) not in trail_text() and token_digest(new) not in trail_text()
    assert new not in caplog.text and old not in caplog.text


def test_revoke_deletes_the_token_and_its_key_stops_working():
    ann = auditor()
    client = logged_in(ann)
    key = shown_key(client.post(PAGE, {"action": "create"}))
    before = last_sequence()

    answer = client.post(PAGE, {"action": "revoke", "created": seen(ann)}, follow=True)

    assert answer.redirect_chain == [(PAGE, 302)]
    assert b"Your API token was revoked" in answer.content
    assert b"You have no API token." in answer.content
    assert not Token.objects.exists() and api_status(key) == 401
    [event] = events_after(before)
    assert (event.kind, event.actor) == ("auth.token_deleted", "ann")
    assert key not in trail_text()


def test_a_double_submitted_rotate_rotates_once_and_says_so():
    ann = auditor()
    client = logged_in(ann)
    shown_key(client.post(PAGE, {"action": "create"}))
    form = {"action": "rotate", "created": seen(ann)}
    before = last_sequence()

    first = shown_key(client.post(PAGE, form))
    second = client.post(PAGE, form, follow=True)

    assert second.status_code == 200 and b"changed meanwhile" in second.content
    assert not KEY.search(second.content.decode())
    assert list(Token.objects.values_list("key", flat=True)) == [token_digest(first)]
    assert api_status(first) == 200
    assert [e.kind for e in events_after(before)] == ["auth.token_rotated"]


def test_a_double_submitted_create_makes_one_token():
    ann = auditor()
    client, before = logged_in(ann), last_sequence()

    key = shown_key(client.post(PAGE, {"action": "create"}))
    again = client.post(PAGE, {"action": "create"}, follow=True)

    assert again.status_code == 200 and b"You already have an API token" in again.content
    assert key.encode() not in again.content
    assert list(Token.objects.values_list("key", flat=True)) == [token_digest(key)]
    assert [e.kind for e in events_after(before)] == ["auth.token_created"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["create", "rotate"])
def test_two_tabs_posting_at_the_same_moment_make_one_change(action):
    """Two requests on their own connections, released together: one acts, one is told."""
    ned = User.objects.create_user("ned", is_staff=True)  # no group: a valid key reads 403
    if action == "rotate":
        Token.objects.create(user=ned)
    form = {"action": action, "created": seen(ned) if action == "rotate" else ""}
    clients = [logged_in(ned), logged_in(ned)]
    start = threading.Barrier(2)

    def post(client: Client):
        start.wait()
        try:
            return client.post(PAGE, form)
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(post, clients))

    assert sorted(answer.status_code for answer in answers) == [200, 302]
    [key] = [shown_key(answer) for answer in answers if answer.status_code == 200]
    assert list(Token.objects.values_list("key", flat=True)) == [token_digest(key)]
    assert api_status(key) == 403
    kind = "auth.token_created" if action == "create" else "auth.token_rotated"
    assert AuditEvent.objects.filter(kind=kind).count() == 1


def test_a_revoke_from_a_stale_tab_keeps_the_newer_key():
    ann = auditor()
    client = logged_in(ann)
    shown_key(client.post(PAGE, {"action": "create"}))
    stale = seen(ann)
    newer = shown_key(client.post(PAGE, {"action": "rotate", "created": stale}))
    before = last_sequence()

    answer = client.post(PAGE, {"action": "revoke", "created": stale}, follow=True)

    assert answer.status_code == 200 and b"changed meanwhile" in answer.content
    assert api_status(newer) == 200 and events_after(before) == []


def test_a_double_submitted_revoke_does_not_fail():
    ann = auditor()
    client = logged_in(ann)
    shown_key(client.post(PAGE, {"action": "create"}))
    form = {"action": "revoke", "created": seen(ann)}
    client.post(PAGE, form)
    before = last_sequence()

    again = client.post(PAGE, form, follow=True)

    assert again.status_code == 200 and b"You have no API token any more" in again.content
    assert not Token.objects.exists() and events_after(before) == []


def test_a_user_can_only_act_on_their_own_token():
    bob = auditor("bob")
    bobs = Token.objects.create(user=bob)
    client = logged_in(auditor("ann"))
    before = last_sequence()

    for action in ("rotate", "revoke"):
        answer = client.post(
            PAGE, {"action": action, "created": bobs.created.isoformat(), "user": bob.pk}
        )
        assert answer.status_code == 302
    page = client.get(PAGE)

    assert Token.objects.get(user=bob).key == bobs.key and events_after(before) == []
    assert b"You have no API token." in page.content  # ann's page: bob's token is not named


@pytest.mark.parametrize("staff", [False, None], ids=["not staff", "anonymous"])
def test_without_staff_access_the_page_sends_to_the_login_and_changes_nothing(staff):
    client = Client()
    if staff is not None:
        client.force_login(auditor(staff=staff))
    before = last_sequence()

    looked = client.get(PAGE)
    posted = client.post(PAGE, {"action": "create"})

    for answer in (looked, posted):
        assert answer.status_code == 302
        assert answer["Location"] == f"/admin/login/?next={PAGE}"
    assert not Token.objects.exists() and events_after(before) == []


def test_an_inactive_user_cannot_reach_it():
    ann = auditor()
    client = logged_in(ann)
    User.objects.filter(pk=ann.pk).update(is_active=False)

    answer = client.post(PAGE, {"action": "create"})

    assert answer.status_code == 302 and not Token.objects.exists()


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"action": "delete-everything"},
        {"action": "rotate"},
        {"action": "revoke", "created": "yesterday"},
        {"action": "rotate", "created": "2026-01-01T00:00:00"},  # no offset
    ],
    ids=["no action", "unknown action", "rotate without created", "malformed", "naive"],
)
def test_bad_input_is_a_400_and_changes_nothing(form):
    ann = auditor()
    key = Token.objects.create(user=ann).key
    client, before = logged_in(ann), last_sequence()

    answer = client.post(PAGE, form)

    assert answer.status_code == 400
    assert Token.objects.get().key == key and events_after(before) == []


def test_other_methods_are_refused():
    client = logged_in(auditor())

    assert client.put(PAGE).status_code == 405
    assert client.delete(PAGE).status_code == 405
    assert not Token.objects.exists()


def test_a_post_without_the_csrf_token_is_refused():
    client = Client(enforce_csrf_checks=True)
    client.force_login(auditor())

    answer = client.post(PAGE, {"action": "create"})

    assert answer.status_code == 403 and not Token.objects.exists()
