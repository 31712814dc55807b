"""API tokens: their digest, and a person's own token: create, rotate, revoke (docs/api.md,
README: API and Security model).

A token is DRF's `authtoken.Token` (one per user, its `key` is the primary key); it carries its
user's permissions and nothing more. The database never holds the secret a client sends: `key`
holds `token_digest(secret)`, "h$" and the first 38 hex digits of its SHA-256 (152 bits; the
prefix tells a digest from a clear key saved before digests). The secret stays DRF-shaped
(`Token.generate_key()`, 40 hex digits) and is handed out once: `token_hash_on_save` (a
pre_save receiver, `releases.signals`) replaces any new token's clear key by its digest and keeps
the secret on the instance as `token.secret`, so every way of making one (this module, the
superuser's admin, `drf_create_token`, `Token.objects.create`) stores the digest only, and
`releases.authentication.DigestTokenAuthentication` looks up the digest of the key presented.
A lost key cannot be recovered, only rotated.

The admin page *My API token* (`releases.admin_api_token`) calls the functions below for the
logged-in user only.

Rotate and revoke name the token the person saw by its creation time (never by its key, which
the page does not hold): when it changed meanwhile (a second click, another tab) nothing is
done and `TokenChanged` says so, so a stale form never replaces or deletes a newer key and
never makes a second one. The audit trail gets one event per action, with the user's name and
never the key or its digest: `auth.token_created` and `auth.token_deleted` (recorded by the
Token signals in `releases.signals`, as for the superuser's admin and `drf_create_token`) and
`auth.token_rotated`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from releases.services.access import access_record

DIGEST_PREFIX = "h$"


def token_digest(secret: str) -> str:
    """What the `key` column holds for `secret`: "h$" + its SHA-256, 38 hex digits (40 chars)."""
    return DIGEST_PREFIX + hashlib.sha256(secret.encode()).hexdigest()[:38]


def token_is_digest(key: str) -> bool:
    return key.startswith(DIGEST_PREFIX)


def token_hash_on_save(instance: Token) -> None:
    """Before a new token is inserted: keep its clear key as `instance.secret`, store the digest.

    A key already digested (a saved token saved again) is left alone; so is a token already in
    the database, whose primary key an UPDATE must still find."""
    if instance.key and not token_is_digest(instance.key) and instance._state.adding:
        instance.secret = instance.key
        instance.key = token_digest(instance.key)


class TokenChanged(Exception):
    """The token is not the one the person saw (or they already have one); nothing was done."""


def api_token_of(*, user) -> Token | None:
    return Token.objects.filter(user=user).first()


def api_token_create(*, user) -> str:
    """Make `user`'s token and return its secret; TokenChanged when they already have one."""
    try:
        with transaction.atomic():  # a savepoint: the unique user refuses a second token
            return Token.objects.create(user=user).secret
    except IntegrityError:
        raise TokenChanged(
            "you already have an API token (a second click or another tab made it, and only "
            "that answer showed its key); nothing was changed: rotate it if you lack its key"
        ) from None


def api_token_issue(*, user, replace: bool) -> str:
    """`drf_create_token`: make `user`'s token (deleting theirs first when `replace`) and return
    its secret; TokenChanged when they have one and `replace` is false (its key cannot be shown
    again). Recorded as `auth.token_deleted` then `auth.token_created`."""
    with transaction.atomic():  # a replacement is both steps or neither
        if replace:
            Token.objects.filter(user=user).delete()
        return api_token_create(user=user)


def api_token_rotate(*, user, seen: datetime) -> str:
    """Replace the key of `user`'s token created at `seen` and return the new secret.

    One conditional UPDATE of the key (the primary key; an UPDATE sends no pre_save, so the
    digest is made here): the old key stops working when it commits, and two rotations of the
    same token cannot both succeed."""
    secret = Token.generate_key()
    with transaction.atomic():
        rotated = Token.objects.filter(user=user, created=seen).update(
            key=token_digest(secret), created=timezone.now()
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
    return secret


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
