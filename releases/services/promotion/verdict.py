"""Whether production follows the desired state, told once and shown in `/healthz`.

When the desired state cannot be published as it is (a rule names a build that is not listed or
cannot be promoted, a broken desktop-builds.json, rules held back by an unreviewed merge),
production keeps its last good state and the promotion records
`promotion.desired_state_invalid` with the reasons — once, not on every periodic reconcile —
then `promotion.desired_state_restored` when a later run can publish again. The newest of the
two is what `/healthz` reports (`degraded` while invalid); it lives in the audit trail, so every
web process and worker agrees on it without another table.
"""

from __future__ import annotations

from releases.models import AuditEvent
from releases.services.audit import audit_record

INVALID = "promotion.desired_state_invalid"
RESTORED = "promotion.desired_state_restored"


def _last() -> AuditEvent | None:
    return AuditEvent.objects.filter(kind__in=(INVALID, RESTORED)).order_by("-sequence").first()


def verdict_record(
    *, problems: list[str], source: str, actor: str, notified_by: int | None = None
) -> None:
    """Record a change of verdict: new reasons, or valid again. `notified_by`: the event that
    already announced every reason (the new one then notifies nobody)."""
    last = _last()
    if problems:
        if last is not None and last.kind == INVALID and last.data.get("reasons") == problems:
            return
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        audit_record(
            kind=INVALID,
            message=f"production keeps its last good state: {problems[0]}{more}",
            actor=actor,
            data={"reasons": problems, "source": source}
            | ({"notified_by": notified_by} if notified_by else {}),
        )
    elif last is not None and last.kind == INVALID:
        audit_record(
            kind=RESTORED,
            message=f"the desired state ({source}) is valid again and published",
            actor=actor,
            data={"source": source},
        )


def verdict_health() -> str:
    """For /healthz: "" while production follows the desired state, else a short notice (no
    reasons: they name builds and rules, and /healthz answers anyone; the trail has them)."""
    last = _last()
    if last is None or last.kind != INVALID:
        return ""
    since = last.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"the desired state is invalid since {since}; production keeps its last good state"
