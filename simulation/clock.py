"""Virtual time for the simulation.

``VirtualClock`` alone is a manual clock: ``sleep`` moves time forward at once (contract tests
use it). The scheduler (``simulation.scheduler``) replaces ``sleep`` with a yield to the other
simulated actors, so that many containers interleave in one deterministic order.
"""

from __future__ import annotations

START = 1_796_083_200.0  # 2026-12-01T00:00:00Z: a fixed origin makes every seed replayable


class VirtualClock:
    def __init__(self, start: float = START) -> None:
        self.now = start

    def wall(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return round(self.now * 1000)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
