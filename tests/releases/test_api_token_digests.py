"""API token keys are stored as SHA-256 digests, never in clear (README: Security model,
docs/api.md): every way of making a token stores the digest and hands the secret out once,
the secret authenticates, the digest does not, and keys saved in clear before are migrated."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from rest_framework.authtoken.models import Token, TokenProxy
from rest_framework.test import APIClient

from releases.models import ApiToken, AuditEvent
from releases.services.api_tokens import token_digest

pytestmark = pytest.mark.django_db
SECRET = re.compile(r"^[0-9a-f]{40}$")
DIGEST = re.compile(r"^h\$[0-9a-f]{38}$")
MY_PAGE = "/admin/my-api-token/"
SHOWN = re.compile(r'<code id="new-key"[^>]*>([0-9a-f]{40})</code>')


def auditor(name: str = "ann", **extra) -> User:
    user = User.objects.create_user(name, password="a-long-test-password", **extra)
    user.groups.add(Group.objects.get(name="auditors"))
    return user


def api_status(key: str) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api.get("/api/builds/").status_code


def table() -> str:
    """Every column of every token row, as a dump of the table would have them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM authtoken_token")
        return json.dumps(cursor.fetchall(), default=str)


def assert_stored_as_digest(secret: str, user: User) -> None:
    assert SECRET.match(secret), secret
    stored = Token.objects.get(user=user).key
    assert DIGEST.match(stored) and stored == token_digest(secret)
    assert secret not in table()
    assert api_status(secret) == 200  # the secret handed out works
    assert api_status(stored) == 401  # what a dump holds does not


def trail() -> str:
    return "".join(event.canonical() for event in AuditEvent.objects.all())


def test_token_objects_create_stores_the_digest_and_keeps_the_secret_on_the_instance():
    ann = auditor()

    token = Token.objects.create(user=ann)

    assert token.key == token_digest(token.secret)
    assert_stored_as_digest(token.secret, ann)
    token.save()  # saved again: the digest is not digested twice
    assert Token.objects.get().key == token_digest(token.secret)


@pytest.mark.parametrize("model", [Token, TokenProxy, ApiToken])
def test_a_key_given_in_clear_is_stored_as_its_digest_through_any_token_class(model):
    ann = auditor()
    secret = Token.generate_key()

    made = model.objects.create(user=ann, key=secret)

    assert made.secret == secret
    assert_stored_as_digest(secret, ann)


def test_the_self_service_page_stores_digests_on_create_and_rotate():
    ann = auditor(is_staff=True)
    client = Client()
    client.force_login(ann)

    first = SHOWN.search(client.post(MY_PAGE, {"action": "create"}).content.decode())[1]
    assert_stored_as_digest(first, ann)
    seen = Token.objects.get().created.isoformat()
    second = SHOWN.search(
        client.post(MY_PAGE, {"action": "rotate", "created": seen}).content.decode()
    )[1]

    assert_stored_as_digest(second, ann)
    assert first not in table() and api_status(first) == 401  # rotated: the old one is gone
    assert Token.objects.count() == 1


def test_the_superusers_admin_shows_the_secret_and_stores_its_digest(admin_client):
    rita = auditor("rita")
    before = AuditEvent.objects.order_by("-sequence").first().sequence

    answer = admin_client.post("/admin/releases/apitoken/add/", {"user": rita.pk})

    assert answer.status_code == 200
    secret = SHOWN.search(answer.content.decode())[1]
    assert_stored_as_digest(secret, rita)
    kinds = AuditEvent.objects.filter(sequence__gt=before).values_list("kind", flat=True)
    assert "auth.token_created" in kinds
    assert secret not in trail() and token_digest(secret) not in trail()


def test_drf_create_token_prints_the_secret_and_stores_its_digest():
    ann = auditor()
    out = StringIO()

    call_command("drf_create_token", "ann", stdout=out)

    printed = re.fullmatch(r"Generated token ([0-9a-f]{40}) for user ann\n", out.getvalue())
    assert printed, out.getvalue()
    assert_stored_as_digest(printed[1], ann)
    assert printed[1] not in trail() and token_digest(printed[1]) not in trail()


def test_drf_create_token_reset_replaces_the_token_and_the_old_secret_stops_working():
    ann = auditor()
    old = Token.objects.create(user=ann).secret
    out = StringIO()

    call_command("drf_create_token", "ann", "-r", stdout=out)

    new = re.search(r"Generated token ([0-9a-f]{40})", out.getvalue())[1]
    assert new != old and api_status(old) == 401
    assert_stored_as_digest(new, ann)
    assert list(AuditEvent.objects.order_by("-sequence").values_list("kind", flat=True)[:2]) == [
        "auth.token_created",
        "auth.token_deleted",
    ]


def test_drf_create_token_without_reset_keeps_an_existing_token_and_says_why():
    ann = auditor()
    token = Token.objects.create(user=ann)
    events = AuditEvent.objects.count()

    with pytest.raises(CommandError, match="cannot be shown again.*-r"):
        call_command("drf_create_token", "ann", stdout=StringIO())

    assert list(Token.objects.values_list("key", flat=True)) == [token.key]
    assert api_status(token.secret) == 200 and AuditEvent.objects.count() == events


def test_drf_create_token_for_an_unknown_user_fails_and_makes_nothing():
    with pytest.raises(CommandError, match="user nobody does not exist"):
        call_command("drf_create_token", "nobody", stdout=StringIO())

    assert not Token.objects.exists()


def test_a_digest_or_a_near_miss_presented_as_a_key_is_refused():
    token = Token.objects.create(user=auditor())

    assert api_status(token.key) == 401
    assert api_status(token.key[2:]) == 401
    assert api_status(token.secret[:-1] + "0" if token.secret[-1] != "0" else "1") == 401
    assert api_status(token.secret.upper()) == 401
    assert api_status(token.secret) == 200


def test_an_inactive_users_secret_is_refused():
    ann = auditor()
    secret = Token.objects.create(user=ann).secret
    User.objects.filter(pk=ann.pk).update(is_active=False)

    assert api_status(secret) == 401


def test_a_dump_from_before_digests_loads_with_its_keys_hashed(tmp_path):
    """`loaddata` of a backup that holds clear keys: the keys keep working, stored hashed."""
    ann = auditor()
    secret = Token.generate_key()
    fixture = tmp_path / "tokens.json"
    fixture.write_text(
        json.dumps(
            [
                {
                    "model": "authtoken.token",
                    "pk": secret,
                    "fields": {"user": ann.pk, "created": "2026-01-01T00:00:00Z"},
                }
            ]
        )
    )

    call_command("loaddata", str(fixture), verbosity=0)

    assert_stored_as_digest(secret, ann)


@pytest.mark.django_db(transaction=True)
def test_keys_saved_in_clear_before_keep_working_after_the_migration():
    from django.apps import apps

    from releases.roles import roles_sync

    roles_sync(apps)  # the groups as the migrations make them: an earlier transactional test
    # (a flush) may have removed them
    before = [("releases", "0008_review_console")]
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    ann, bob = auditor("ann"), auditor("bob")
    hashed = Token.objects.create(user=bob)  # made after: already a digest
    try:
        executor.migrate(before)
        OldToken = executor.loader.project_state(before).apps.get_model("authtoken", "Token")
        legacy = OldToken.objects.create(user_id=ann.pk, key=Token.generate_key())
        assert legacy.key in table()

        executor = MigrationExecutor(connection)
        executor.migrate([("releases", "0009_api_token_digests")])
    finally:
        MigrationExecutor(connection).migrate(leaves)

    migrated = Token.objects.get(user=ann)
    assert migrated.created == legacy.created  # the same token, same user and time
    assert_stored_as_digest(legacy.key, ann)
    assert Token.objects.get(user=bob).key == hashed.key and api_status(hashed.secret) == 200
    assert Token.objects.count() == 2
