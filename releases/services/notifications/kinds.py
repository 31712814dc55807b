"""Which audit events need a person: the one table that maps audit kinds to notification kinds.

Every event goes through `releases.services.audit.audit_record`; the kinds below are handed to
the notification channels, every other kind notifies nobody. The notification kinds are a
contract with receivers (README: Notifications): add audit kinds here, not new event names.

| notification kind         | audit kinds                                                    |
|---------------------------|----------------------------------------------------------------|
| release.awaiting_review   | review.awaiting_approval (admin), review.pr_opened (GitHub),   |
|                           | review.pr_found (a retry found the PR a crashed attempt opened)|
| release.approved          | review.accepted (the last required approval), github.pr_merged |
| release.rejected          | review.rejected, github.pr_closed (closed without merging)     |
| release.live              | release.live                                                   |
| rollback.opened           | rollback.awaiting_approval (admin), rollback.opened (GitHub)   |
| staging.failed            | staging.failed, staging.queue_failed, review.failed (staged,   |
|                           | but its review could not be opened)                            |
| promotion.failed          | promotion.failed, promotion.desired_state_invalid (production  |
|                           | keeps its last good state), promotion.name_refused,            |
|                           | promotion.overwrite_refused, promotion.unreviewed,             |
|                           | github.pr_merged_unreviewed (merged with unreviewed commits),   |
|                           | and any later promotion.*_failed / *_invalid / *_refused kind  |
|                           | or kind naming "unreviewed"                                    |
| audit.chain_broken        | audit.chain_broken (the periodic chain check)                  |
| login.locked_out          | auth.locked_out (login throttling)                             |
| rollout.halted            | rollout.halted                                                 |

A single approval out of several (`review.approved`) and GitHub's own review events notify
nobody: GitHub tells a PR's reviewers itself, and the release still waits. Nor do the good news
of a check (promotion.desired_state_restored, github.pr_merge_covered) or a withdrawal a
release manager made on purpose (release.withdrawn). Nor does an event that repeats a failure
another event already announced (`data.notified_by`, see `event_notification_kind`).
"""

from __future__ import annotations

import re

NOTIFIED_KINDS: dict[str, str] = {
    "review.awaiting_approval": "release.awaiting_review",
    "review.pr_opened": "release.awaiting_review",
    "review.pr_found": "release.awaiting_review",
    "review.accepted": "release.approved",
    "github.pr_merged": "release.approved",
    "review.rejected": "release.rejected",
    "github.pr_closed": "release.rejected",
    "release.live": "release.live",
    "rollback.awaiting_approval": "rollback.opened",
    "rollback.opened": "rollback.opened",
    "staging.failed": "staging.failed",
    "staging.queue_failed": "staging.failed",
    "review.failed": "staging.failed",
    "promotion.failed": "promotion.failed",
    "promotion.desired_state_invalid": "promotion.failed",
    "promotion.name_refused": "promotion.failed",
    "promotion.overwrite_refused": "promotion.failed",
    "promotion.unreviewed": "promotion.failed",
    "github.pr_merged_unreviewed": "promotion.failed",
    "audit.chain_broken": "audit.chain_broken",
    "auth.locked_out": "login.locked_out",
    "rollout.halted": "rollout.halted",
}
# Promotion refusals other changes may add (a new check names its own kind): all are failures.
PROMOTION_FAILURE = re.compile(r"^promotion\.\w*(failed|invalid|refused)$|unreviewed")

NOTIFICATION_KINDS = (
    "release.awaiting_review",
    "release.approved",
    "release.rejected",
    "release.live",
    "rollback.opened",
    "staging.failed",
    "promotion.failed",
    "audit.chain_broken",
    "login.locked_out",
    "rollout.halted",
)
FAILURE_KINDS = frozenset({"staging.failed", "promotion.failed", "audit.chain_broken"})


def event_notification_kind(kind: str, data: dict | None) -> str | None:
    """The notification an event sends: none when it repeats a failure an earlier event already
    told people about (its `data.notified_by` names that event; e.g. the promotion refusing an
    unreviewed merge that `github.pr_merged_unreviewed` announced): one notification per cause."""
    if isinstance(data, dict) and data.get("notified_by"):
        return None
    return notification_kind(kind)


def notification_kind(audit_kind: str) -> str | None:
    """The notification an audit event of this kind sends, or None."""
    if audit_kind in NOTIFIED_KINDS:
        return NOTIFIED_KINDS[audit_kind]
    if PROMOTION_FAILURE.search(audit_kind):
        return "promotion.failed"
    return None
