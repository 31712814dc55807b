"""The review backend: where people accept or refuse a change to production (docs/review.md).

One class per backend, behind one interface (`ReviewBackend`):
- `GitHubReview` (`github.py`): a pull request on the release repository; its merge is the
  approval, and the default branch is the desired production state.
- `AdminReview` (`admin.py`): release requests approved by `REQUIRED_APPROVALS` people in the
  Django admin; the accepted requests, laid over production, are the desired state.

The backend is chosen here, once, from the `REVIEW_BACKEND` setting (`review_backend()`), the way
Django loads its configured backends: by dotted path, so that this module imports none of them
and every service can ask for the backend without an import cycle. No other module reads the
setting; a change of it (tests' `settings.REVIEW_BACKEND = …`) resets the choice.

Adding a backend is one class here and one line in `BACKENDS`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from releases.models import Build, ReleaseRequest, RolloutHalt
    from releases.services.promotion.desired import DesiredState
    from releases.services.promotion.plan import Gate

SETTING = "REVIEW_BACKEND"
BACKENDS = {
    "github": "releases.services.review_backends.github.GitHubReview",
    "admin": "releases.services.review_backends.admin.AdminReview",
}


class ReviewBackend:
    """What the rest of the pipeline asks of a review backend."""

    name = ""
    label = ""  # where people decide, in messages: "GitHub", "the admin"
    decides_in_admin = False  # approve / reject are offered in the admin

    def release_open(self, release: ReleaseRequest) -> None:
        """Open the review of a staged release (`review_open` checked the lifecycle allows it)."""
        raise NotImplementedError

    def rollback_open(self, release: ReleaseRequest, *, actor: str) -> None:
        """Open the review of a new rollback request, asked for by `actor`."""
        raise NotImplementedError

    def halt_open(self, halt: RolloutHalt, build: Build, *, data_now: dict) -> ReleaseRequest:
        """Open the review that makes a halt (already in force) part of the desired state;
        `data_now` is production's desktop-releases.json with the halt. Raises on failure."""
        raise NotImplementedError

    def desired_state(self, *, production) -> DesiredState:
        """What production should hold, as exact bytes (DesiredStateError when unreadable)."""
        raise NotImplementedError

    def review_gate(self, *, new_build_ids: list[str]) -> Gate:
        """Which new builds the review does not let through, and why the rules must wait."""
        raise NotImplementedError

    def decision_blocker(self) -> str | None:
        """Why nobody approves or rejects in the admin with this backend; None when they do."""
        if self.decides_in_admin:
            return None
        return f"reviews happen on {self.label} ({review_backend_hint(self.name)})"


@functools.cache
def review_backend() -> ReviewBackend:
    """The configured backend (one instance per process, until the setting changes)."""
    return import_string(BACKENDS[getattr(settings, SETTING)])()


def review_backend_hint(name: str) -> str:
    """How to configure the backend `name`, for messages: `REVIEW_BACKEND=admin`."""
    return f"{SETTING}={name}"


@receiver(setting_changed)
def _setting_changed(*, setting: str, **kwargs) -> None:
    if setting == SETTING:
        review_backend.cache_clear()
