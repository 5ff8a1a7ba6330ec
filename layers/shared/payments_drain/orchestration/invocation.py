"""What one invocation carries through its steps: its time budget, its HubSpot counters, and the
AWS steps after its last HubSpot call, each bounded by the time left to answer."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as StepTimeout
from dataclasses import dataclass, field
from typing import Any

from payments_drain.core import clock as clocks
from payments_drain.core.batching import Answer
from payments_drain.core.observability import logger
from payments_drain.core.outcomes import Wait


@dataclass
class Budget:
    """The invocation's time, less a margin for the work after the last call."""

    deadline: float
    clock: Callable[[], float] = clocks.monotonic
    margin_s: float = 0.0
    started_s: float = field(default_factory=clocks.wall)  # wall time the invocation started

    FINAL_S = 0.3  # what answering takes once the work is done: the response, the logs, the metrics

    @classmethod
    def from_context(cls, context: Any, margin_ms: int) -> Budget:
        remaining_ms = context.get_remaining_time_in_millis()
        return cls(clocks.monotonic() + (remaining_ms - margin_ms) / 1000, margin_s=margin_ms / 1000)

    def left(self) -> float:
        return self.deadline - self.clock()

    def left_to_answer(self) -> float:
        """Seconds until the invocation must answer: the margin is for the work after the last
        HubSpot call, bounded by this (``BoundedSteps``), and nothing may run past it."""
        return self.left() + self.margin_s - self.FINAL_S

    def calls_end_ms(self) -> int:
        """Wall-clock epoch ms at which the budget for HubSpot calls ends."""
        return int((clocks.wall() + max(self.left(), 0)) * 1000)

    def function_deadline_ms(self) -> int:
        """Wall-clock epoch ms at which the function times out: nothing of ours runs after it."""
        return int((clocks.wall() + max(self.left(), 0) + self.margin_s) * 1000)


@dataclass
class Stats:
    """What the summary line and the metrics report about the HubSpot side of one batch."""

    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    throttled: int = 0
    errors: int = 0
    auth_failures: int = 0
    ambiguous: int = 0  # AmbiguousCreates: creates HubSpot may have stored, per payment and answer
    daily_limit: bool = False
    rate_limit_remaining: int | None = None
    held: int = 0  # retries held on the queue until what they wait for can take them
    hold_failures: int = 0  # holds SQS refused or did not answer, also after a shorter try
    unreadable: int = 0  # 2xx answers whose body could not be read (batching.UNREADABLE)
    # Payments retried because the ledger or the rate slots table was unavailable, or because HubSpot
    # refused the deployment's configuration (batching.UNIQUE_PROPERTY_MISSING), by reason code.
    unavailable: Counter = field(default_factory=Counter)
    # HubSpot was throttling, down or unreachable in this invocation: a part the budget stops
    # before sending is held like the parts that met it (only a real failure may burn a receive).
    hubspot_unavailable: bool = False
    links: int = 0  # upsert mode: links (associations) HubSpot wrote for written payments
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def hubspot_wait(self) -> Wait | None:
        return Wait.HUBSPOT_UNAVAILABLE if self.hubspot_unavailable else None

    def count_unreadable(self) -> None:
        with self.lock:
            self.unreadable += 1

    def count_links(self, written: int) -> None:
        with self.lock:
            self.links += written

    def count_unavailable(self, code: str, payments: int) -> None:
        with self.lock:
            self.unavailable[code] += payments

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
                self.ambiguous += len(message_ids)
            remaining = answer.header("X-HubSpot-RateLimit-Remaining")
            if remaining is not None and remaining.isdigit():
                value = int(remaining)
                current = self.rate_limit_remaining
                self.rate_limit_remaining = value if current is None else min(value, current)

    def reclaimed(self) -> None:
        """A payment whose last invocation ended not knowing whether HubSpot stored it."""
        with self.lock:
            self.ambiguous += 1


class BoundedSteps:
    """The AWS steps after the last HubSpot call, each ended by the time left to answer."""

    def __init__(self, pool: Executor) -> None:
        self.pool = pool

    def run(self, budget: Budget, step: str, work: Callable[[], None], on_timeout=None) -> None:
        """An AWS step after the last HubSpot call, ended by the time left to answer: whatever AWS
        does (a call that hangs, retries), the invocation answers before its timeout. Its payments
        were decided before; what the step did not finish is the next delivery's to do."""
        future = self.pool.submit(work)
        try:
            future.result(timeout=max(0.0, budget.left_to_answer()))
        except StepTimeout:
            logger.error("step not finished before the invocation had to answer", extra={"step": step})
            if on_timeout is not None:
                on_timeout()
        except Exception as error:  # noqa: BLE001 - stored state we cannot use must not fail the batch
            logger.error("step failed", extra={"step": step, "errorType": type(error).__name__})
            if on_timeout is not None:
                on_timeout()
