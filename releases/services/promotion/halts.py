"""Halted rollouts laid over the desired state (README: Staged rollouts › Halt).

A halt (`releases.services.rollouts.rollout_halt`) sets production's `buildByPercentage` rules
of a build to 0% at once. Until the desired state carries the halt (its review merged or
approved, or any reviewed change that leaves the build's rollout at 0% or removes it), every
promotion and reconcile lays the halt over the desired state (`halts_overlay`): nothing undoes
it. Resuming is a normal reviewed change once the halt is settled.
"""

from __future__ import annotations

import copy
from typing import Any

from django.utils import timezone

from releases.control_files import (
    RELEASES_FILE,
    ControlFileInvalid,
    control_bytes,
    control_parse,
)
from releases.models import RolloutHalt
from releases.services.audit import audit_record

RULE = "buildByPercentage"


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


def rules_halted(data: dict, build_ids: set[str]) -> dict:
    """A copy of `data` with every rollout rule of `build_ids` at 0% and without its schedule
    (key order kept, so the file reads as the same file with one change)."""
    data = copy.deepcopy(data)
    for build_id in build_ids:
        for rule in _rollout_rules(data, build_id):
            rule["percentage"] = 0
            rule.pop("schedule", None)
    return data


def halts_overlay(raw: bytes | None, *, settle: bool) -> bytes | None:
    """The desired `desktop-releases.json` with every unsettled halt laid over it.

    A halt the desired state already carries is settled (when `settle`): recorded once, and no
    longer laid over, so a later reviewed change can resume the rollout."""
    active = list(RolloutHalt.objects.filter(settled_at__isnull=True))
    if not active or raw is None:
        return raw
    try:
        data = control_parse(RELEASES_FILE, raw)
    except ControlFileInvalid:
        return raw  # invalid anyway: validation says why and production keeps its rules
    pending = {halt.build_id for halt in active if rollout_running(data, halt.build_id)}
    if settle:
        _settle([halt for halt in active if halt.build_id not in pending])
    return control_bytes(rules_halted(data, pending)) if pending else raw


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
