"""What one process counts between two flushes: shared by the counting code
(`adoption.counting`) and the flush into the database (`adoption.services`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from datasketches import hll_sketch

LG_K = 12  # 4,096 registers: ~1.6% standard error, exact-ish below a few hundred installs


@dataclass
class Batch:
    """What one process counted since its last flush."""

    counts: dict[tuple[int, str, str, str, str], int] = field(default_factory=dict)
    sketches: dict[tuple[int, str, str], hll_sketch] = field(default_factory=dict)
    period: int = 0  # the secret period the sketches were hashed in

    def add(self, hour: int, platform: str, build: str, metric: str, name: str = "") -> None:
        key = (hour, platform, build, metric, name)
        self.counts[key] = self.counts.get(key, 0) + 1
