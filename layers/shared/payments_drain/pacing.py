"""Pacing by HubSpot's own rate-limit headers, shared by every call of a container.

HubSpot answers each request with ``X-HubSpot-RateLimit-Max``, ``-Remaining`` and
``-Interval-Milliseconds`` for its rolling window. Nothing in urllib3 or Powertools reads
these, hence this small gate: when what remains of the window no longer covers the calls in
flight plus a reserve, a caller waits one request's share of the window before sending, so the
window is slowed into instead of run into a 429.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping


class RateGate:
    def __init__(self, limit_per_10s: int, reserve: int = 2, clock: Callable[[], float] = time.monotonic) -> None:
        self.max = limit_per_10s
        self.interval_s = 10.0
        self.remaining: int | None = None
        self.reserve = reserve
        self.in_flight = 0
        self.clock = clock
        self.paused_until = 0.0
        self.lock = threading.Lock()

    def delay(self) -> float:
        """Seconds to wait before the next request (0 when the window has room)."""
        with self.lock:
            wait = max(0.0, self.paused_until - self.clock())
            if self.remaining is not None and self.remaining - self.in_flight <= self.reserve:
                wait = max(wait, self.interval_s / self.max * (self.in_flight + 1))
            return wait

    def started(self) -> None:
        with self.lock:
            self.in_flight += 1
            if self.remaining is not None:
                self.remaining -= 1

    def finished(self, headers: Mapping[str, str], throttled_for_s: float = 0.0) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            self.in_flight = max(0, self.in_flight - 1)
            try:
                self.max = int(lower.get("x-hubspot-ratelimit-max", self.max))
                self.interval_s = int(lower.get("x-hubspot-ratelimit-interval-milliseconds", self.interval_s * 1000)) / 1000
                if "x-hubspot-ratelimit-remaining" in lower:
                    self.remaining = int(lower["x-hubspot-ratelimit-remaining"])
            except ValueError:
                pass
            if throttled_for_s:
                self.paused_until = max(self.paused_until, self.clock() + throttled_for_s)
