"""The embedded broker: a SQLite file (`DATA_DIR/broker.sqlite3`) through kombu's SQLAlchemy
transport (docs/processes.md).

kombu marks a delivered message invisible and never deletes it, so without a sweep the file
grows by every task ever queued (each beat tick, each staging, each notification). The worker's
beat runs `embedded_broker_sweep` every BROKER_SWEEP_INTERVAL_SECONDS; freed pages are reused by
later messages, so the file stops growing. Redis needs none of this.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from django.conf import settings

EMBEDDED_SCHEMES = ("sqla+sqlite", "sqlite")
# kombu's table for messages (kombu.transport.sqlalchemy: `message_tablename`, not overridden)
MESSAGE_TABLE = "kombu_message"
BROKER_SWEEP_INTERVAL_SECONDS = 600.0


def embedded_broker_file(url: str) -> Path | None:
    """The SQLite file of an embedded broker URL (`sqla+sqlite:////abs/path`), else None."""
    scheme, _, rest = url.partition(":///")
    if scheme not in EMBEDDED_SCHEMES:
        return None
    return Path(rest.split("?", 1)[0])


def embedded_broker_sweep() -> int:
    """Delete the messages kombu has delivered (they are never read again: an unacknowledged
    one is given back from the worker's memory, as a new message). Returns how many."""
    path = embedded_broker_file(settings.CELERY_BROKER_URL)
    if path is None or not path.is_file():
        return 0  # never create the file (/healthz reports a missing one)
    with sqlite3.connect(path, timeout=20) as db:
        tables = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (MESSAGE_TABLE,)
        ).fetchall()
        if not tables:
            return 0
        deleted = db.execute(f"DELETE FROM {MESSAGE_TABLE} WHERE visible = 0").rowcount
    db.close()
    return deleted
