"""The admin review backend: approvals by `REQUIRED_APPROVALS` people in the Django admin.

A release, a rollback and a halt each become a release request waiting for approval; the
decisions and the two-person rule are `releases.services.approvals`. The desired production
state is the accepted release requests, laid over what production holds today.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q

from releases.control_files import (
    BUILDS_FILE,
    RELEASES_FILE,
    control_bytes,
    control_parse_or_empty,
    control_read,
)
from releases.models import Build, ReleaseRequest, ReleaseState, RolloutHalt
from releases.services import lifecycle
from releases.services.lifecycle import Event
from releases.services.promotion.desired import DesiredState, build_ids_of, release_apply
from releases.services.promotion.halts import rules_halted
from releases.services.promotion.plan import Gate
from releases.services.review_backends import ReviewBackend

# Release requests whose content belongs in production; one whose promotion failed once it was
# approved stays accepted, so that reconcile retries it.
ACCEPTED = Q(state__in=(ReleaseState.APPROVED, ReleaseState.MERGED, ReleaseState.LIVE)) | Q(
    state=ReleaseState.FAILED, merged_at__isnull=False
)


class AdminReview(ReviewBackend):
    name = "admin"
    label = "the admin"
    decides_in_admin = True

    def release_open(self, release: ReleaseRequest) -> None:
        lifecycle.move(
            release=release,
            step="open_review",
            build_step="open_review",
            event=Event(
                kind="review.awaiting_approval",
                message=f"waiting for {settings.REQUIRED_APPROVALS} approval(s) in the admin",
            ),
        )

    def rollback_open(self, release: ReleaseRequest, *, actor: str) -> None:
        event = Event(
            kind="rollback.awaiting_approval",
            message=f"rollback to {release.build} requested by {actor}; waiting for approval",
            actor=actor,
        )
        lifecycle.move(release=release, step="open_review", event=event)

    def halt_open(self, halt: RolloutHalt, build: Build, *, data_now: dict) -> ReleaseRequest:
        halted = rules_halted(data_now, {halt.build_id})
        release = ReleaseRequest.objects.create(
            build=build,
            kind="halt",
            payload={"haltedBy": halt.actor, "reason": halt.reason, "halt": halt.pk},
            release_info={"releaseRedirections": halted.get("releaseRedirections", [])},
        )
        lifecycle.move(
            release=release,
            step="open_review",
            event=Event(
                kind="review.awaiting_approval",
                message=f"halt of the rollout of {build} recorded by {halt.actor}; "
                "waiting for approval",
                actor=halt.actor,
            ),
        )
        return release

    def desired_state(self, *, production) -> DesiredState:
        return _state(production, frozenset())

    def review_gate(self, *, new_build_ids: list[str]) -> Gate:
        return Gate()  # an approval in the admin covers exactly what it shows


def _state(production, excluded: frozenset[str]) -> DesiredState:
    state = _from_database(production=production, excluded=excluded)
    state.build_ids = build_ids_of(state.builds_json, strict=True)
    # Composes the state again without some builds' releases (their rules too).
    state.compose = lambda more: _state(production, excluded | more)
    return state


def _from_database(*, production, excluded: frozenset[str] = frozenset()) -> DesiredState:
    # Keep what production already lists (e.g. builds promoted before this install) and lay the
    # accepted releases over it, in the order they were accepted: the last word wins. Releases
    # of `excluded` builds (refused by the plan) add nothing, not even their rules.
    listed = control_parse_or_empty(BUILDS_FILE, control_read(production, BUILDS_FILE))
    entries = {e.get("id"): e for e in listed if "id" in e}
    rules = control_parse_or_empty(RELEASES_FILE, control_read(production, RELEASES_FILE))
    had_rules = bool(rules)
    accepted = (
        ReleaseRequest.objects.filter(ACCEPTED)
        .select_related("build")
        .exclude(build__build_id__in=excluded)
        .order_by("merged_at", "pk")
    )
    for release in accepted:
        had_rules = release_apply(entries, rules, release=release) or had_rules
    return DesiredState(
        builds_json=control_bytes(list(entries.values())),
        releases_json=control_bytes(rules) if had_rules else None,
        source="approved releases",
    )
