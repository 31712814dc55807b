"""The release lifecycle: the only code that changes a Build's `status` or a release's `state`.

Every change is a named step: the states it may start from, the state it ends in, and what it
sets on the way. A step is one conditional UPDATE (`… WHERE pk = %s AND status IN (from)`): its
row count says whether this caller won, so two workers, or two managers clicking at once, never
both take it. The step's audit event is appended in the same transaction, so whoever reads the
new state also finds its event. `tests/releases/test_lifecycle.py` checks that nothing else writes
either column, and that the table below (copied into the README) matches the steps.

Staging holds a lease on the build (`lease_holder`, `lease_renewed_at`): the run renews it while
it downloads, and another run may take a `staging` build over only once the lease is older than
STAGING_LEASE_SECONDS (its worker died).

Build (`Build.status`):

| step | from | to | sets | when |
|---|---|---|---|---|
| claim | received, staging (stale lease) | staging | lease | a staging run takes the build |
| unclaim | staging | received | lease cleared | a transient error: the retry starts afresh |
| stage | staging | staged | staged_at, clears reason | every file is staged and verified |
| fail | staging | failed | reason | the run found a permanent problem (manifest, name, hash) |
| give_up | received, staging (stale lease, or held by this release) | failed | reason | out of retries, or the broker was down at enqueue |
| retry | failed | received | clears reason | a release manager retries staging |
| review_failed | staged | staged | reason | the review could not be opened (the files stay usable) |
| open_review | staged | in_review | clears reason | a pull request opened, or approvals awaited in the admin |
| back_to_review | any but live | in_review | | GitHub: PR reopened, changes requested, review dismissed |
| approve | any but live | approved | | approved in the admin, or approved or merged on GitHub |
| unapprove | approved | staged | | its last accepted release was withdrawn |
| reject | any but live | rejected | | rejected in the admin |
| close | any but live | closed | | every release of the build was closed or rejected |
| refuse | any but live | failed | reason | promotion refuses its files (missing, unverified, a name or byte conflict) |
| promotion_failed | approved | approved | reason | promotion could not finish (production unreachable, full); reconcile retries |
| go_live | any but live | live | live_at, clears reason | its files are in production |

Release request (`ReleaseRequest.state`):

| step | from | to | sets | when |
|---|---|---|---|---|
| defer_review | pending | awaiting_review | | staged with `manage.py stage --no-review` |
| fail_staging | pending | failed | reason | staging failed, gave up, or could not be queued |
| retry | failed (before merge) | pending | clears reason | a release manager retries staging |
| open_review | pending, awaiting_review, failed (before merge) | in_review | clears reason | a pull request opened, or approvals awaited in the admin |
| fail_review | pending, awaiting_review, failed (before merge) | failed | reason | GitHub refused the branch, a commit or the PR |
| reopen | unsettled | in_review | | GitHub: PR reopened, a review dismissed |
| request_changes | unsettled | changes_requested | | GitHub: a reviewer requested changes |
| approve_on_github | unsettled | approved | | GitHub: a reviewer approved |
| approve | awaiting_review, in_review, changes_requested | approved | | REQUIRED_APPROVALS people approved in the admin |
| reject | awaiting_review, in_review, changes_requested | rejected | | someone rejected it in the admin |
| close | unsettled | closed | | GitHub: PR closed without merging |
| merge | any but live, merged_unreviewed, withdrawn | merged | | GitHub: PR merged |
| hold_merge | merged, merged_unreviewed, unmerged | merged_unreviewed | reason | the merge's head is not covered by a review |
| cover_merge | merged, merged_unreviewed, unmerged | merged | clears reason | the merge's head is covered by a review |
| withdraw | approved, merged, merged_unreviewed, failed (once merged) | withdrawn | reason | a release manager withdrew it |
| fail_promotion | merged, approved (once merged), failed (once merged) | failed | reason | promotion refused its build or could not finish; it stays accepted |
| go_live | merged, approved (once merged), failed (once merged) | live | live_at, clears reason | its build is in production |

"unsettled": pending, awaiting_review, in_review, changes_requested, approved, closed, rejected
(a late or replayed GitHub event does not move a release that was merged, went live, failed or
was withdrawn). "unmerged": awaiting_review, in_review, changes_requested, approved, failed (a
release whose build is on the default branch, but whose merge webhook may have been missed).
"once merged": `merged_at` is set (admin approvals set it too); "before merge": it is not. A
release that failed once merged is still accepted: the next promotion or reconcile that gets its
build out makes it live.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from releases.models import Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services.audit import audit_record

logger = logging.getLogger(__name__)

B, R = BuildStatus, ReleaseState

# Named sets of states the services ask about (one definition each).
FILES_STAGED = (B.STAGED, B.IN_REVIEW, B.APPROVED, B.LIVE)  # staged and verified files
BUILD_FINAL = (B.FAILED, B.REJECTED, B.CLOSED)  # staging does not start again by itself
NOT_LIVE = tuple(s for s in B.values if s != B.LIVE)
SETTLED = (R.MERGED, R.MERGED_UNREVIEWED, R.LIVE, R.FAILED, R.WITHDRAWN)
UNSETTLED = tuple(s for s in R.values if s not in SETTLED)
OPENABLE = (R.PENDING, R.AWAITING_REVIEW, R.FAILED)
DECIDABLE = (R.AWAITING_REVIEW, R.IN_REVIEW, R.CHANGES_REQUESTED)
UNMERGED = (R.AWAITING_REVIEW, R.IN_REVIEW, R.CHANGES_REQUESTED, R.APPROVED, R.FAILED)
# Accepted by a review (a withdrawal takes one out); approved and failed count once merged.
ACCEPTED = (R.APPROVED, R.MERGED, R.MERGED_UNREVIEWED)
# Requests that may still need their build's staged files (retention keeps those).
RELEASE_OPEN = (*DECIDABLE, R.PENDING, R.APPROVED, R.MERGED, R.MERGED_UNREVIEWED)
REVIEW_OPEN = (R.PENDING, *DECIDABLE, R.APPROVED)  # a review that can still be decided


@dataclass(frozen=True)
class Step:
    sources: tuple[str, ...]
    target: str
    reason: str = "keep"  # "set": a reason is required · "clear" · "keep"
    stamp: str = ""  # a timestamp column set to now
    once_merged: tuple[str, ...] = ()  # of the sources: only with `merged_at` set
    before_merge: tuple[str, ...] = ()  # of the sources: only without `merged_at`


BUILD_STEPS: dict[str, Step] = {
    "claim": Step((B.RECEIVED,), B.STAGING),  # and from a stale `staging`: see _condition
    "unclaim": Step((B.STAGING,), B.RECEIVED),
    "stage": Step((B.STAGING,), B.STAGED, reason="clear", stamp="staged_at"),
    "fail": Step((B.STAGING,), B.FAILED, reason="set"),
    "give_up": Step((B.RECEIVED,), B.FAILED, reason="set"),  # and see _condition
    "retry": Step((B.FAILED,), B.RECEIVED, reason="clear"),
    "review_failed": Step((B.STAGED,), B.STAGED, reason="set"),
    "open_review": Step((B.STAGED,), B.IN_REVIEW, reason="clear"),
    "back_to_review": Step(NOT_LIVE, B.IN_REVIEW),
    "approve": Step(NOT_LIVE, B.APPROVED),
    "unapprove": Step((B.APPROVED,), B.STAGED),
    "reject": Step(NOT_LIVE, B.REJECTED),
    "close": Step(NOT_LIVE, B.CLOSED),
    "refuse": Step(NOT_LIVE, B.FAILED, reason="set"),
    "promotion_failed": Step((B.APPROVED,), B.APPROVED, reason="set"),
    "go_live": Step(NOT_LIVE, B.LIVE, reason="clear", stamp="live_at"),
}

RELEASE_STEPS: dict[str, Step] = {
    "defer_review": Step((R.PENDING,), R.AWAITING_REVIEW),
    "fail_staging": Step((R.PENDING,), R.FAILED, reason="set"),
    "retry": Step((R.FAILED,), R.PENDING, reason="clear", before_merge=(R.FAILED,)),
    "open_review": Step(OPENABLE, R.IN_REVIEW, reason="clear", before_merge=(R.FAILED,)),
    "fail_review": Step(OPENABLE, R.FAILED, reason="set", before_merge=(R.FAILED,)),
    "reopen": Step(UNSETTLED, R.IN_REVIEW),
    "request_changes": Step(UNSETTLED, R.CHANGES_REQUESTED),
    "approve_on_github": Step(UNSETTLED, R.APPROVED),
    "approve": Step(DECIDABLE, R.APPROVED),
    "reject": Step(DECIDABLE, R.REJECTED),
    "close": Step(UNSETTLED, R.CLOSED),
    "merge": Step(
        tuple(s for s in R.values if s not in (R.LIVE, R.MERGED_UNREVIEWED, R.WITHDRAWN)),
        R.MERGED,
    ),
    "hold_merge": Step((R.MERGED, R.MERGED_UNREVIEWED, *UNMERGED), R.MERGED_UNREVIEWED, "set"),
    "cover_merge": Step((R.MERGED, R.MERGED_UNREVIEWED, *UNMERGED), R.MERGED, reason="clear"),
    "withdraw": Step((*ACCEPTED, R.FAILED), R.WITHDRAWN, reason="set", once_merged=(R.FAILED,)),
    "fail_promotion": Step(
        (R.MERGED, R.APPROVED, R.FAILED),
        R.FAILED,
        reason="set",
        once_merged=(R.APPROVED, R.FAILED),
    ),
    "go_live": Step(
        (R.MERGED, R.APPROVED, R.FAILED),
        R.LIVE,
        reason="clear",
        stamp="live_at",
        once_merged=(R.APPROVED, R.FAILED),
    ),
}


class StepError(ValueError):
    """A step that does not exist, or a failing step without its reason (a bug, not a race)."""


@dataclass(frozen=True)
class Event:
    """The audit event of a step (see `audit_record`)."""

    kind: str
    message: str
    actor: str = ""
    url: str = ""
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Moved:
    """Which rows the step moved (False: another caller got there first, or the row had left
    the step's from-states)."""

    release: bool = False
    build: bool = False

    def __bool__(self) -> bool:
        return self.release or self.build


@dataclass
class _Update:
    step: Step
    values: dict[str, Any] = field(default_factory=dict)


def move(
    *,
    release: ReleaseRequest | None = None,
    step: str = "",
    build: Build | None = None,
    build_step: str = "",
    reason: str = "",
    event: Event | None = None,
    fields: Mapping[str, Any] | None = None,
    independent: bool = False,
) -> Moved:
    """Take `step` on `release` and/or `build_step` on `build` (the release's build when not
    given), in one transaction with `event`, which is recorded when either row moved.

    The build step follows the release step: it is taken only when the release moved, unless
    `independent` (then the build's own from-states decide). `reason` is the failure reason of
    a step that sets one; `fields` are other columns of the release (of the build when only
    `build_step` is given) written with the step."""
    if not (step or build_step) or (step and release is None):
        raise StepError("move() needs a release step with a release, or a build step")
    build_pk = build.pk if build is not None else (release.build_id if release else None)
    now = timezone.now()
    with transaction.atomic():
        moved_release = False
        if step:
            update = _prepare(RELEASE_STEPS, step, reason, now, fields)
            moved_release = _apply(ReleaseRequest, release, update, "state", None)
        moved_build = False
        if build_step and (moved_release or not step or independent):
            update = _prepare(BUILD_STEPS, build_step, reason, now, None if step else fields)
            where = _condition(build_step, holder=release)
            target = build if build is not None else Build(pk=build_pk)
            moved_build = _apply(Build, target, update, "status", where)
        moved = Moved(release=moved_release, build=moved_build)
        if moved and event is not None:
            _record(event, release=release, build=build)
    return moved


def _prepare(steps, name: str, reason: str, now, fields) -> _Update:
    step = steps.get(name)
    if step is None:
        raise StepError(f"no step {name!r}")
    values: dict[str, Any] = {"updated_at": now, **(fields or {})}
    if step.reason == "set":
        if not reason:
            raise StepError(f"step {name!r} needs a reason")
        values["failure_reason"] = reason
    elif step.reason == "clear":
        values["failure_reason"] = ""
    if step.stamp:
        values.setdefault(step.stamp, now)
    return _Update(step=step, values=values)


def _apply(model, row, update: _Update, column: str, where: Q | None) -> bool:
    step = update.step
    plain = tuple(s for s in step.sources if s not in (*step.once_merged, *step.before_merge))
    allowed = Q(**{f"{column}__in": plain})
    if step.once_merged:
        allowed |= Q(**{f"{column}__in": step.once_merged, "merged_at__isnull": False})
    if step.before_merge:
        allowed |= Q(**{f"{column}__in": step.before_merge, "merged_at__isnull": True})
    values = {column: step.target, **update.values}
    if model is Build and step.target != B.STAGING:
        values.update(lease_holder=None, lease_renewed_at=None)
    if where is not None:
        allowed |= where
    moved = model.objects.filter(allowed, pk=row.pk).update(**values) == 1
    if moved:
        for name, value in values.items():
            setattr(row, name, value)
    return moved


def _condition(build_step: str, *, holder: ReleaseRequest | None) -> Q | None:
    """The lease part of a build step's from-states (OR-ed with its listed states)."""
    if build_step not in ("claim", "give_up"):
        return None
    stale = timezone.now() - timedelta(seconds=settings.STAGING_LEASE_SECONDS)
    lapsed = Q(lease_renewed_at__lt=stale) | Q(lease_renewed_at__isnull=True)
    if build_step == "give_up" and holder is not None:
        # The run of this very release has ended (the task gave up): its lease is void.
        lapsed |= Q(lease_holder=holder.pk)
    return Q(status=B.STAGING) & lapsed


def _record(event: Event, *, release: ReleaseRequest | None, build: Build | None) -> None:
    audit_record(
        kind=event.kind,
        message=event.message,
        release=release,
        build=build if release is None else None,
        actor=event.actor,
        url=event.url,
        data=dict(event.data) if event.data else None,
    )


def allows(row: Build | ReleaseRequest, step: str) -> bool:
    """Whether `step` may start from `row`'s state as read (the move itself decides races)."""
    if isinstance(row, ReleaseRequest):
        spec, value = RELEASE_STEPS[step], row.state
        merged = row.merged_at is not None
    else:
        spec, value, merged = BUILD_STEPS[step], row.status, False
    if value not in spec.sources:
        return False
    if value in spec.once_merged and not merged:
        return False
    return not (value in spec.before_merge and merged)


def build_claim(*, build: Build, release: ReleaseRequest) -> bool:
    """received → staging with a fresh lease held by `release`'s run (or take over a `staging`
    build whose lease went stale). False: another run holds a fresh lease."""
    now = timezone.now()
    values = {"lease_holder": release.pk, "lease_renewed_at": now}
    update = _Update(step=BUILD_STEPS["claim"], values={"updated_at": now, **values})
    return _apply(Build, build, update, "status", _condition("claim", holder=None))


def lease_renew(*, build: Build) -> None:
    """Keep the staging run's lease fresh (see `build_claim`); no state changes."""
    Build.objects.filter(pk=build.pk, status=B.STAGING).update(lease_renewed_at=timezone.now())


def lifecycle_table() -> str:
    """The two transition tables of the module docstring (the README has the same text)."""
    doc = __doc__ or ""
    return doc[doc.index("Build (`Build.status`):") :].strip()
