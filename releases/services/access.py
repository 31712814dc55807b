"""Sensitive account actions in the audit trail: logins, failed logins, lockouts, logouts,
API tokens (never their keys), and user, group and permission changes.

The receivers in `releases.signals` call these; the person acting is taken from the request
being served (`releases.middleware.AuditActorMiddleware`), or "system" outside a request
(a management command, a migration's data step is not recorded at all).
"""

from __future__ import annotations

import contextvars

from releases.services.audit import audit_record

current_actor: contextvars.ContextVar[str] = contextvars.ContextVar("audit_actor", default="")
# User fields whose change is recorded (the password as "changed", never its hash).
WATCHED_USER_FIELDS = ("username", "email", "is_active", "is_staff", "is_superuser", "password")


def actor_now() -> str:
    return current_actor.get() or "system"


def access_record(*, kind: str, message: str, actor: str = "", data: dict | None = None) -> None:
    audit_record(kind=kind, message=message, actor=actor or actor_now(), data=data or {})


def user_changes(before: dict, after: dict) -> list[str]:
    """Names of the watched fields that differ (`password` when the hash changed)."""
    return [name for name in WATCHED_USER_FIELDS if before.get(name) != after.get(name)]


def user_snapshot(user) -> dict:
    return {name: getattr(user, name) for name in WATCHED_USER_FIELDS}


def describe_changes(before: dict, after: dict, changed: list[str]) -> dict:
    """What changed, for the trail: old → new, except the password (only that it changed)."""
    return {
        name: "changed" if name == "password" else [before.get(name), after.get(name)]
        for name in changed
    }
