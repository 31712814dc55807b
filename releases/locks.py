"""PostgreSQL session advisory locks: the one way the project holds a lock across workers and
machines (docs/promotion.md, docs/review.md).

A session lock lives in the database, not in a worker, so every worker on every machine sees
it; and PostgreSQL drops it the moment the holder's connection closes, so a worker killed while
holding one (SIGKILL, OOM, a lost machine) never leaves a stale lock behind. A key is one
signed 64-bit number, or two 32-bit ones (a namespace and an id); the two forms never overlap.
Only the attempt is here (it never waits): whoever waits decides how long, and what to do on
SQLite.
"""

from __future__ import annotations

from django.db import connection


def advisory_try_lock(*key: int) -> bool:
    """Take the session lock `key` if no other session holds it; never waits."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({_placeholders(key)})", list(key))
        return bool(cursor.fetchone()[0])


def advisory_unlock(*key: int) -> None:
    """Release the session lock `key` that this session holds."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_advisory_unlock({_placeholders(key)})", list(key))


def _placeholders(key: tuple[int, ...]) -> str:
    if len(key) not in (1, 2):
        raise ValueError("an advisory lock key is one 64-bit or two 32-bit numbers")
    return ", ".join(["%s"] * len(key))
