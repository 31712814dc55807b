"""A person's own API token: create, rotate, revoke (docs/api.md, README: API).

The admin page *My API token* (`releases.admin_api_token`) calls these for the logged-in user
only. A token is DRF's `authtoken.Token` (one per user, its key is the primary key); it carries
its user's permissions and nothing more.

Rotate and revoke name the token the person saw by its creation time (never by its key, which
the page does not hold): when it changed meanwhile (a second click, another tab) nothing is
done and `TokenChanged` says so, so a stale form never replaces or deletes a newer key and
never makes a second one. The audit trail gets one event per action and never the key:
`auth.token_created` and `auth.token_deleted` (recorded by the Token signals in
`releases.signals`, as for the superuser's admin and `drf_create_token`) and
`auth.token_rotated`.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from releases.services.access import access_record


class TokenChanged(Exception):
    """The token is not the one the person saw (or they already have one); nothing was done."""


def api_token_of(*, user) -> Token | None:
    return Token.objects.filter(user=user).first()


def api_token_create(*, user) -> str:
    """Make `user`'s token and return its key; TokenChanged when they already have one."""
    try:
        with transaction.atomic():  # a savepoint: the unique user refuses a second token
            return Token.objects.create(user=user).key
    except IntegrityError:
        raise TokenChanged(
            "you already have an API token (a second click or another tab made it, and only "
            "that answer showed its key); nothing was changed: rotate it if you lack its key"
        ) from None


def api_token_rotate(*, user, seen: datetime) -> str:
    """Replace the key of `user`'s token created at `seen` and return the new key.

    One conditional UPDATE of the key (the primary key): the old key stops working when it
    commits, and two rotations of the same token cannot both succeed."""
    key = Token.generate_key()
    with transaction.atomic():
        rotated = Token.objects.filter(user=user, created=seen).update(
            key=key, created=timezone.now()
        )
        if not rotated:
            raise TokenChanged(_changed(user))
        name = user.get_username()
        access_record(
            kind="auth.token_rotated",
            message=f"API token of {name} rotated",
            actor=name,
            data={"user": name},
        )
    return key


def api_token_revoke(*, user, seen: datetime) -> None:
    """Delete `user`'s token created at `seen` (its signal records `auth.token_deleted`)."""
    with transaction.atomic():
        deleted, _ = Token.objects.filter(user=user, created=seen).delete()
    if not deleted:
        raise TokenChanged(_changed(user))


def _changed(user) -> str:
    if api_token_of(user=user) is None:
        return "you have no API token any more (revoked meanwhile); nothing was changed"
    return (
        "your API token changed meanwhile (a second click or another tab); nothing was "
        "changed: check it below and act again if needed"
    )
