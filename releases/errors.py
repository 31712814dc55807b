"""Errors that cross layers: raised by a service, handled by a task, a view or the admin.

An error that only one module raises and catches stays in that module; an error a service
raises for its caller (a task that retries it, a view that answers with it) lives here, so
the caller imports this module and never the other way round (docs/architecture.md).
"""

from __future__ import annotations


class TransientError(Exception):
    """A failure worth retrying (network, 5xx, throttling): a task raising it is retried with
    exponential backoff (`releases.tasks.ReliableTask`)."""


class WebhookRejected(Exception):
    """A webhook delivery is refused with `status` and a one-line `message`; nothing was
    stored. `errors` lists the field errors of an invalid body (docs/webhooks.md)."""

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []
