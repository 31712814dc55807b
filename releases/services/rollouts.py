"""Halting a staged rollout (README: Staged rollouts › Halt).

A release manager (permission `halt_rollout`) halts the `buildByPercentage` rollout of a build
from the admin. In one step, under the promotion lock:
- the halt is recorded (`RolloutHalt`) and the audit trail gets `rollout.halted`;
- production's `desktop-releases.json` is written with every rollout rule of that build at 0%
  (its schedule removed), the feed's cached copy is invalidated in every process, and the CDN
  purges the manifests whose answer changed.
Then the review side catches up: a pull request (GitHub backend) or a release request of kind
`halt` (admin backend) that makes the same change to the desired state.

Until the desired state carries the halt (that review merged or approved, or any reviewed
change that leaves the build's rollout at 0% or removes it), every promotion and reconcile
lays the halt over the desired state (`halts_overlay`): nothing undoes it. Resuming is a normal
reviewed change once the halt is settled.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from releases.control_files import RELEASES_FILE
from releases.integrations import buckets
from releases.models import Build, ReleaseRequest, RolloutHalt
from releases.services.audit import audit_record
from releases.services.lifecycle import Event
from releases.services.promotion.desired import json_bytes
from releases.services.promotion.lock import promotion_lock
from releases.services.pull_requests import FileChange, PullSpec
from releases.services.release_files import Updated
from releases.services.review_backends import review_backend

logger = logging.getLogger(__name__)

RULE = "buildByPercentage"
MAX_REASON_LENGTH = 1000
# A halt waits for a promotion that holds the lock (it copies files) at most this long.
LOCK_TIMEOUT_SECONDS = 60.0


class HaltRefused(Exception):
    """The rollout cannot be halted; the message says why."""


def _rollout_rules(data: Any, build_id: str) -> list[dict]:
    rules = data.get("releaseRedirections") if isinstance(data, dict) else None
    return [
        rule
        for rule in (rules if isinstance(rules, list) else [])
        if isinstance(rule, dict) and rule.get("rule") == RULE and rule.get("buildId") == build_id
    ]


def _exposes(rule: dict) -> bool:
    """Whether a rollout rule lets anyone in, now or at a scheduled step."""
    steps = rule.get("schedule") if isinstance(rule.get("schedule"), list) else []
    values = [rule.get("percentage"), *(s.get("percentage") for s in steps if isinstance(s, dict))]
    return any(value != 0 for value in values)


def rollout_running(data: Any, build_id: str) -> bool:
    """Whether `data` (a desktop-releases.json) rolls `build_id` out to anyone, now or later."""
    return any(_exposes(rule) for rule in _rollout_rules(data, build_id))


def rollouts_listed(data: Any) -> list[str]:
    """The builds `data` rolls out by percentage, in rule order."""
    rules = data.get("releaseRedirections") if isinstance(data, dict) else None
    found = [r.get("buildId") for r in rules or [] if isinstance(r, dict) and r.get("rule") == RULE]
    return list(dict.fromkeys(b for b in found if isinstance(b, str)))


def rules_halted(data: dict, build_ids: set[str]) -> dict:
    """A copy of `data` with every rollout rule of `build_ids` at 0% and without its schedule
    (key order kept, so the file reads as the same file with one change)."""
    data = json.loads(json.dumps(data))
    for build_id in build_ids:
        for rule in _rollout_rules(data, build_id):
            rule["percentage"] = 0
            rule.pop("schedule", None)
    return data


def _read_rules(bucket: buckets.Bucket) -> tuple[bytes | None, dict]:
    try:
        raw = bucket.read_bytes(RELEASES_FILE)
    except KeyError:
        return None, {}
    try:
        data = json.loads(raw)
    except ValueError:
        return raw, {}
    return raw, data if isinstance(data, dict) else {}


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
        after = json_bytes(rules_halted(data, {build_id}))
        production.write_bytes(RELEASES_FILE, after)
    _feed_changed(before, after, reason=f"rollout of {build_id} halted", actor=actor)
    _review_open(halt, data_now=data)
    halt.refresh_from_db()
    return halt


def _feed_changed(before: bytes | None, after: bytes, *, reason: str, actor: str) -> None:
    from cdn.metadata import metadata_invalidate
    from releases.services.cdn_purge import ControlWrite, cdn_purge_queue, purge_names

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
        data = json.loads(text) if text else {}
    except ValueError:
        return Updated(text or "", f"{RELEASES_FILE} on the default branch is not JSON")
    if not isinstance(data, dict):
        return Updated(text or "", f"{RELEASES_FILE} on the default branch is not an object")
    return Updated(json_bytes(rules_halted(data, {build_id})).decode(), "")


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


# --- The reconcile guard -------------------------------------------------------------------


def halts_overlay(raw: bytes | None, *, settle: bool) -> bytes | None:
    """The desired `desktop-releases.json` with every unsettled halt laid over it.

    A halt the desired state already carries is settled (when `settle`): recorded once, and no
    longer laid over, so a later reviewed change can resume the rollout."""
    active = list(RolloutHalt.objects.filter(settled_at__isnull=True))
    if not active or raw is None:
        return raw
    try:
        data = json.loads(raw)
    except ValueError:
        return raw  # invalid anyway: validation says why and production keeps its rules
    if not isinstance(data, dict):
        return raw
    pending = {halt.build_id for halt in active if rollout_running(data, halt.build_id)}
    if settle:
        _settle([halt for halt in active if halt.build_id not in pending])
    return json_bytes(rules_halted(data, pending)) if pending else raw


def _settle(halts: list[RolloutHalt]) -> None:
    now = timezone.now()
    for halt in halts:
        if RolloutHalt.objects.filter(pk=halt.pk, settled_at__isnull=True).update(settled_at=now):
            audit_record(
                kind="rollout.halt_settled",
                message=f"the desired state carries the halt of the rollout of {halt.build_id}",
                actor=halt.actor,
                data={"build_id": halt.build_id, "halt": halt.pk},
            )
