"""The audit trail: append an event, verify the chain (SPEC §10)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from releases.models import GENESIS_HASH, AuditChainHead, AuditEvent, Build, ReleaseRequest
from releases.services.notifications import notifications_queue


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
        event = AuditEvent(
            sequence=head.sequence + 1,
            created_at=timezone.now(),
            kind=kind,
            message=message,
            actor=actor,
            url=url,
            build=build,
            release=release,
            data=clean,
            previous_hash=head.hash,
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
    for event in events:
        if event.sequence != expected_sequence:
            problems.append(f"event #{expected_sequence} is missing (next is #{event.sequence})")
        if event.previous_hash != previous:
            problems.append(f"event #{event.sequence}: link to the previous event is broken")
        if event.compute_hash() != event.hash:
            problems.append(f"event #{event.sequence}: content does not match its hash")
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
    return ChainReport(checked=checked, problems=problems)
