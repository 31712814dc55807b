"""Staging a build: ToDesktop → staging bucket, verified (SPEC §5)."""

from __future__ import annotations


def build_stage(*, release_id: int) -> None:
    """Stage every file of the release's build, verify it, then open the review."""
    raise NotImplementedError
