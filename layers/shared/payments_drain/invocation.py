"""What one invocation carries through its steps: its time budget and its HubSpot counters."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from payments_drain.batching import Answer


@dataclass
class Budget:
    """The invocation's time, less a margin for the work after the last call."""

    deadline: float
    clock: Callable[[], float] = time.monotonic
    margin_s: float = 0.0

    @classmethod
    def from_context(cls, context: Any, margin_ms: int) -> Budget:
        remaining_ms = context.get_remaining_time_in_millis()
        return cls(time.monotonic() + (remaining_ms - margin_ms) / 1000, margin_s=margin_ms / 1000)

    def left(self) -> float:
        return self.deadline - self.clock()

    def function_deadline_ms(self) -> int:
        """Wall-clock epoch ms at which the function times out: nothing of ours runs after it."""
        return int((time.time() + max(self.left(), 0) + self.margin_s) * 1000)


@dataclass
class Stats:
    """What the summary line and the metrics report about the HubSpot side of one batch."""

    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    throttled: int = 0
    errors: int = 0
    auth_failures: int = 0
    ambiguous: int = 0  # copies HubSpot may have stored unbeknown to us (one per payment and such answer)
    ambiguous_ids: set[str] = field(default_factory=set)  # the payments concerned
    daily_limit: bool = False
    rate_limit_remaining: int | None = None
    held: int = 0  # retries held on the queue until HubSpot can take them (visibility extended)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, answer: Answer, message_ids: list[str], ambiguous: bool) -> None:
        with self.lock:
            self.requests += 1
            self.statuses[str(answer.status or answer.error)] += 1
            self.latencies_ms.append(answer.latency_ms)
            if answer.status == 429:
                self.throttled += 1
            if answer.status is None or answer.status >= 400:
                self.errors += 1
            if answer.status in (401, 403):
                self.auth_failures += 1
            if ambiguous:
                self._count_ambiguous(message_ids)
            remaining = answer.header("X-HubSpot-RateLimit-Remaining")
            if remaining is not None and remaining.isdigit():
                value = int(remaining)
                current = self.rate_limit_remaining
                self.rate_limit_remaining = value if current is None else min(value, current)

    def reclaimed(self, message_id: str) -> None:
        """A payment whose last invocation ended not knowing whether HubSpot stored it."""
        with self.lock:
            self._count_ambiguous([message_id])

    def _count_ambiguous(self, message_ids: list[str]) -> None:
        self.ambiguous += len(message_ids)
        self.ambiguous_ids.update(message_ids)
