"""The staged rollouts production runs now, as the Adoption page shows them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from adoption.services import day_ago, unique_installs
from cdn.metadata import metadata_get
from cdn.rollout import percentage_in_force
from releases.models import RolloutHalt


@dataclass(frozen=True)
class Rollout:
    build_id: str
    platforms: str
    percentage: float  # in force now
    next_step: str  # "50% at 2026-03-03 09:00 UTC", or ""
    cohort: int  # unique installs served this build in the last 24 hours
    installs: int  # unique installs polling in the last 24 hours (every build)
    halted_by: str  # "" unless an unsettled halt names it


def rollouts_now() -> list[Rollout]:
    now = time.time()
    since, until = day_ago(), datetime.now(UTC)
    everyone = unique_installs(since=since, until=until)
    halts = {h.build_id: h.actor for h in RolloutHalt.objects.filter(settled_at__isnull=True)}
    found = []
    for rule in metadata_get().rules:
        if rule.kind != "buildByPercentage":
            continue
        upcoming = [(at, p) for at, p in rule.schedule if at > now]
        next_step = ""
        if upcoming:
            when = datetime.fromtimestamp(upcoming[0][0], UTC).strftime("%Y-%m-%d %H:%M UTC")
            next_step = f"{upcoming[0][1]:g}% at {when}"
        found.append(
            Rollout(
                build_id=rule.build_id,
                platforms=", ".join(sorted(rule.platforms)) if not rule.all_platforms else "all",
                percentage=percentage_in_force(rule.percentage, rule.schedule, now=now),
                next_step=next_step,
                cohort=unique_installs(since=since, until=until, build_id=rule.build_id),
                installs=everyone,
                halted_by=halts.get(rule.build_id, ""),
            )
        )
    return found
