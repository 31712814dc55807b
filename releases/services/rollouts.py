"""Halting a staged rollout (README: Staged rollouts › Halt).

A release manager (permission `halt_rollout`) halts the `buildByPercentage` rollout of a build
from the admin. In one step, under the promotion lock:
- the halt is recorded (`RolloutHalt`) and the audit trail gets `rollout.halted`;
- production's `desktop-releases.json` is written with every rollout rule of that build at 0%
  (its schedule removed), the feed's cached copy is invalidated in every process, and the CDN
  purges the manifests whose answer changed.
Then the review side catches up: a pull request (GitHub backend) or a release request of kind
`halt` (admin backend) that makes the same change to the desired state.

Until the desired state carries the halt, every promotion and reconcile lays the halt over the
desired state, so nothing undoes it (`releases.services.promotion.halts`).
"""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.db import transaction

from cdn.metadata import metadata_invalidate
from releases.control_files import (
    RELEASES_FILE,
    ControlFileInvalid,
    control_bytes,
    control_parse,
    control_parse_or_empty,
    control_read,
    control_text,
)
from releases.integrations import buckets
from releases.models import Build, ReleaseRequest, RolloutHalt
from releases.services.audit import audit_record
from releases.services.cdn_purge import ControlWrite, cdn_purge_queue, purge_names
from releases.services.lifecycle import Event
from releases.services.promotion.halts import rollout_running, rules_halted
from releases.services.promotion.lock import promotion_lock
from releases.services.pull_requests import FileChange, PullSpec
from releases.services.release_files import Updated
from releases.services.review_backends import review_backend

logger = logging.getLogger(__name__)

MAX_REASON_LENGTH = 1000
# A halt waits for a promotion that holds the lock (it copies files) at most this long.
LOCK_TIMEOUT_SECONDS = 60.0


class HaltRefused(Exception):
    """The rollout cannot be halted; the message says why."""


def _read_rules(bucket: buckets.Bucket) -> tuple[bytes | None, dict]:
    raw = control_read(bucket, RELEASES_FILE)
    return raw, control_parse_or_empty(RELEASES_FILE, raw)


def rollout_halt(*, build_id: str, actor: str, reason: str) -> RolloutHalt:
    """Halt the rollout of `build_id` in production now, then open its review record.
    Raises HaltRefused when production rolls nothing of that build out."""
    reason = " ".join(reason.split())
    if not reason:
        raise HaltRefused("a reason is required")
    if len(reason) > MAX_REASON_LENGTH:
        raise HaltRefused(f"the reason is longer than {MAX_REASON_LENGTH} characters")
    production = buckets.production(role="promoter")
    with promotion_lock(timeout=LOCK_TIMEOUT_SECONDS):
        before, data = _read_rules(production)
        if not rollout_running(data, build_id):
            raise HaltRefused(f"production rolls out no build {build_id} (nothing to halt)")
        with transaction.atomic():  # recorded before production changes: reconcile keeps it
            halt = RolloutHalt.objects.create(build_id=build_id, actor=actor, reason=reason)
            audit_record(
                kind="rollout.halted",
                message=f"rollout of build {build_id} halted by {actor}: {reason}",
                build=Build.objects.filter(build_id=build_id).first(),
                actor=actor,
                data={"build_id": build_id, "reason": reason, "halt": halt.pk},
            )
        after = control_bytes(rules_halted(data, {build_id}))
        production.write_bytes(RELEASES_FILE, after)
    _feed_changed(before, after, reason=f"rollout of {build_id} halted", actor=actor)
    _review_open(halt, data_now=data)
    halt.refresh_from_db()
    return halt


def _feed_changed(before: bytes | None, after: bytes, *, reason: str, actor: str) -> None:
    metadata_invalidate()
    if settings.CDN_PURGE_BACKEND == "off":
        return
    names = purge_names(
        copied=[], writes=[ControlWrite(RELEASES_FILE, before, after)], rules_now=after
    )
    cdn_purge_queue(names=names, reason=reason, actor=actor)


# --- The review side catches up ------------------------------------------------------------


def _review_open(halt: RolloutHalt, *, data_now: dict) -> None:
    """Open the halt's review record; a failure is recorded on the halt (it stays in force)."""
    build = Build.objects.filter(build_id=halt.build_id).first()
    try:
        if build is None:
            raise HaltRefused(f"build {halt.build_id} is not known here; change the rules by hand")
        release = review_backend().halt_open(halt, build, data_now=data_now)
    except Exception as exc:  # the halt stands whatever the review side does
        message = f"cannot open the review of the halt: {exc}"[:1000]
        RolloutHalt.objects.filter(pk=halt.pk).update(review_error=message)
        audit_record(kind="rollout.halt_review_failed", message=message, actor=halt.actor)
        return
    RolloutHalt.objects.filter(pk=halt.pk).update(release=release, review_error="")


def _halted_text(text: str | None, *, build_id: str) -> Updated:
    try:
        data = control_parse(RELEASES_FILE, text) if text else {}
    except ControlFileInvalid as exc:
        kind = "JSON" if exc.not_json else "an object"
        return Updated(text or "", f"{RELEASES_FILE} on the default branch is not {kind}")
    return Updated(control_text(rules_halted(data, {build_id})), "")


def halt_pull_spec(release: ReleaseRequest) -> PullSpec:
    """The branch, commit and PR of a halt (`review_open` opens it)."""
    build = release.build
    halt = RolloutHalt.objects.get(pk=release.payload["halt"])
    return PullSpec(
        stem=f"halt-rollout-{build.build_id}",
        title=f"[halt] Stop the staged rollout of build {build.build_id} (v{build.version})",
        changes=(
            FileChange(
                RELEASES_FILE,
                partial(_halted_text, build_id=build.build_id),
                f"Halt the staged rollout of build {build.build_id}",
            ),
        ),
        body=lambda _problems, _base: _body(halt, build),
        opened=lambda pull, created: Event(
            kind="review.pr_opened",
            message=f"halt of the rollout of {build} recorded as pull request #{pull.number}"
            + ("" if created else " (found after an earlier attempt)"),
            actor=halt.actor,
            url=pull.url,
        ),
        failed=lambda message: Event(
            kind="rollout.halt_review_failed",
            message=f"cannot open the pull request of the halt: {message}",
            actor=halt.actor,
        ),
        failure_reason=lambda message: f"cannot open the pull request: {message}",
    )


def _body(halt: RolloutHalt, build: Build) -> str:
    return (
        f"**{halt.actor}** halted the staged rollout of build `{build.build_id}` "
        f"(v{build.version}) from the admin: {halt.reason}\n\n"
        f"Production already serves it to nobody: every `buildByPercentage` rule of this build "
        f"in `{RELEASES_FILE}` is at 0% (its schedule removed). Merging records the halt in "
        "the desired state; until then, promotions keep it. To resume after merging, raise "
        "the percentage in a new pull request.\n"
    )
