"""Staged rollouts decided on the server: the `buildByPercentage` rule's cohort and schedule.

electron-updater sends `x-user-staging-id: <uuid>` (a stable per-install id) with every
metadata request, and decides its own `stagingPercentage` with
`UUID.parse(id).readUInt32BE(12) / 0xffffffff < percentage / 100` (AppUpdater.isStagingMatch).
The server uses the same function, so a client is in the server's 25% exactly when it would be
in the client's 25%, and raising the percentage keeps everyone who was already in.

A schedule ramps the percentage over time without another review: the percentage in force is
that of the last step whose time has passed (the rule's own `percentage` before the first).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# The canonical 8-4-4-4-12 form electron-updater writes to `.updaterId`; anything else is not
# an id the client could have put itself in a cohort with.
STAGING_ID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
MAX_UINT32 = 0xFFFFFFFF


def cohort_position(staging_id: str | None) -> float | None:
    """Where an install sits in [0, 1]: bytes 12–15 of its UUID, big-endian, / 0xffffffff.
    None when the header is missing or is not a UUID (such a client is in no cohort)."""
    if not staging_id or len(staging_id) != 36 or not STAGING_ID_RE.fullmatch(staging_id):
        return None
    # Bytes 12–15 are the last 8 hex digits of the canonical form.
    return int(staging_id[28:], 16) / MAX_UINT32


def in_cohort(position: float | None, percentage: float) -> bool:
    """electron-updater's comparison, with the same IEEE doubles as JavaScript."""
    return position is not None and position < percentage / 100


def percentage_in_force(
    percentage: float, schedule: Sequence[tuple[float, float]], *, now: float
) -> float:
    """The last scheduled step whose time (epoch seconds) has passed, else `percentage`.
    `schedule` is sorted by time (validation refuses any other order)."""
    current = percentage
    for at, step in schedule:
        if at > now:
            break
        current = step
    return current
