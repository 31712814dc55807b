"""Promotion: staging → production, ordered, idempotent (SPEC §7)."""

from __future__ import annotations


def promotion_run(*, reason: str, actor: str = "") -> None:
    """Bring production to the desired state (default branch or approved releases)."""
    raise NotImplementedError
