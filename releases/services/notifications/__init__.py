"""Notifications on the events that need a person (README: Notifications).

- `kinds`: the one table of audit kinds → notification kinds.
- `payload`: what a notification says (JSON, Slack, e-mail).
- `delivery`: queue after commit, fan out per channel, deliver with retries, sweep, health.
"""

from __future__ import annotations

from releases.services.notifications.delivery import (
    channels_configured,
    notification_deliver,
    notification_give_up,
    notifications_fan_out,
    notifications_health,
    notifications_queue,
    notifications_sweep,
)
from releases.services.notifications.kinds import NOTIFICATION_KINDS, notification_kind

__all__ = [
    "NOTIFICATION_KINDS",
    "channels_configured",
    "notification_deliver",
    "notification_give_up",
    "notification_kind",
    "notifications_fan_out",
    "notifications_health",
    "notifications_queue",
    "notifications_sweep",
]
