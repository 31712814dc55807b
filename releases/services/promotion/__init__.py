"""Promotion: staging → production, ordered, verified, idempotent, one at a time
(docs/promotion.md).

- `desired`: what production should hold (default branch, or approved releases).
- `plan`: the diff with production, ordered so clients never see a dangling manifest; a build
  that cannot be promoted is refused alone, and production objects are never overwritten.
- `reviewed`: GitHub backend — whether the review covers the head commit that was merged.
- `rules`: desktop-releases.json names only builds that are listed (desired-state validation).
- `verdict`: an invalid desired state is told once (audit) and shown by `/healthz`.
- `lock`: one promotion at a time across workers, released when a holder dies.
- `run`: executes the plan, verifies each copy, marks releases live, invalidates the feed.
"""

from __future__ import annotations

from releases.services.promotion.desired import DesiredStateError
from releases.services.promotion.run import PromotionFailed, PromotionResult, promotion_run

__all__ = ["DesiredStateError", "PromotionFailed", "PromotionResult", "promotion_run"]
