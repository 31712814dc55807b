"""The audit trail: append an event, verify the chain (docs/audit.md)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from releases.models import GENESIS_HASH, AuditChainHead, AuditEvent, Build, ReleaseRequest
from releases.services.notifications import notifications_queue

logger = logging.getLogger(__name__)


def audit_record(
    *,
    kind: str,
    message: str,
    build: Build | None = None,
    release: ReleaseRequest | None = None,
    actor: str = "",
    url: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain. Safe under concurrency: appends are serialised."""
    if release is not None and build is None:
        build = release.build
    # Store exactly what the hash covers: JSON-normalised data (datetimes become strings).
    clean = json.loads(json.dumps(data or {}, cls=DjangoJSONEncoder))
    with transaction.atomic():
        # An UPDATE takes the row lock (PostgreSQL) / the write lock (SQLite) before we read the
        # head, so two writers cannot chain onto the same previous hash.
        if not AuditChainHead.objects.filter(pk=1).update(sequence=F("sequence")):
            AuditChainHead.objects.get_or_create(pk=1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
        sequence, previous = head.sequence, head.hash
        # A head set back behind stored events (an older copy of its row restored, or rows
        # added behind its back) would make every append collide with an existing sequence:
        # chain onto the last stored event, and keep the discrepancy in this event's data (so
        # covered by its hash) for audit_verify and the security lead, rather than lose it.
        last = AuditEvent.objects.order_by("-sequence").values("sequence", "hash").first()
        if last is not None and last["sequence"] > sequence:
            logger.warning(
                "audit chain head #%s is behind the last event #%s: appending after the event",
                sequence,
                last["sequence"],
            )
            clean = {**clean, "chain_head_behind": {"head": sequence, "last": last["sequence"]}}
            sequence, previous = last["sequence"], last["hash"]
        event = AuditEvent(
            sequence=sequence + 1,
            created_at=timezone.now(),
            kind=kind,
            message=message,
            actor=actor,
            url=url,
            build=build,
            release=release,
            data=clean,
            previous_hash=previous,
        )
        event.hash = event.compute_hash()
        event.save()
        AuditChainHead.objects.filter(pk=1).update(sequence=event.sequence, hash=event.hash)
    # The events that need a person go to the notify worker once the caller's step commits.
    notifications_queue(event=event)
    return event


@dataclass
class ChainReport:
    checked: int
    problems: list[str]
    last: int = 0  # the last sequence walked
    first_broken: int | None = None  # the first row whose content or link does not match

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_verify(*, progress=None) -> ChainReport:
    """Walk the chain from the start; report every row whose content or link does not match."""
    problems: list[str] = []
    previous = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    events = AuditEvent.objects.select_related("build").order_by("sequence").iterator(2000)
    first_broken: int | None = None
    for event in events:
        found = len(problems)
        if event.sequence != expected_sequence:
            problems.append(f"event #{expected_sequence} is missing (next is #{event.sequence})")
        if event.previous_hash != previous:
            problems.append(f"event #{event.sequence}: link to the previous event is broken")
        if event.compute_hash() != event.hash:
            problems.append(f"event #{event.sequence}: content does not match its hash")
        if len(problems) > found and first_broken is None:
            first_broken = event.sequence
        previous = event.hash
        expected_sequence = event.sequence + 1
        checked += 1
        if progress:
            progress(checked)
    head = AuditChainHead.objects.filter(pk=1).first()
    last = expected_sequence - 1
    if head and (head.sequence != last or head.hash != previous):
        # Rows removed from the end leave a chain that is valid but shorter than the head.
        problems.append(f"the chain head is #{head.sequence} but the last event is #{last}")
        if first_broken is None:
            first_broken = last + 1
    return ChainReport(checked=checked, problems=problems, last=last, first_broken=first_broken)


CHAIN_KINDS = ("audit.chain_checked", "audit.chain_broken", "audit.chain_still_broken")
MAX_PROBLEMS_KEPT = 20


def audit_chain_check(*, actor: str) -> ChainReport:
    """Verify the chain and record the result as an event of its own.

    A break is `audit.chain_broken` (which notifies) the first time; while the same first row
    stays broken, later checks record `audit.chain_still_broken` (which does not)."""
    report = audit_verify()
    if report.ok:
        audit_record(
            kind="audit.chain_checked",
            message=f"audit chain intact up to #{report.last} ({report.checked} events checked)",
            actor=actor,
            data={"last": report.last, "checked": report.checked},
        )
        return report
    previous = AuditEvent.objects.filter(kind__in=CHAIN_KINDS).order_by("-sequence").first()
    same = (
        previous is not None
        and previous.kind != "audit.chain_checked"
        and previous.data.get("first_broken") == report.first_broken
    )
    audit_record(
        kind="audit.chain_still_broken" if same else "audit.chain_broken",
        message=f"audit chain broken at #{report.first_broken}: {report.problems[0]}"
        + (f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""),
        actor=actor,
        data={
            "last": report.last,
            "checked": report.checked,
            "first_broken": report.first_broken,
            "problems": report.problems[:MAX_PROBLEMS_KEPT],
        },
    )
    return report


@dataclass(frozen=True)
class ChainStatus:
    state: str  # intact | broken | unchecked
    event: AuditEvent | None = None

    @property
    def data(self) -> dict:
        return self.event.data if self.event else {}


def audit_chain_status() -> ChainStatus:
    """The result of the latest check (beat or on demand)."""
    latest = AuditEvent.objects.filter(kind__in=CHAIN_KINDS).order_by("-sequence").first()
    if latest is None:
        return ChainStatus("unchecked")
    return ChainStatus("intact" if latest.kind == "audit.chain_checked" else "broken", latest)


def audit_row_problems(*, event: AuditEvent) -> list[str]:
    """What is wrong with one row and its link to the previous one (its own page)."""
    problems = []
    if event.compute_hash() != event.hash:
        problems.append("its content does not match its hash: it was edited outside the app")
    previous = AuditEvent.objects.filter(sequence__lt=event.sequence).order_by("-sequence").first()
    expected = previous.hash if previous else GENESIS_HASH
    if previous is not None and previous.sequence != event.sequence - 1:
        problems.append(f"event #{event.sequence - 1} before it is missing")
    if event.previous_hash != expected:
        problems.append("its link to the previous event does not match")
    return problems
