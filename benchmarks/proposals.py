"""Prototypes of fixes proposed in docs/performance.md, measured by ``python -m benchmarks --proposals``.

Nothing here is used by the function: these are candidates for the lead, installed only inside
a benchmark's container process so the figure can be compared with the current code in the
same run.

``SelfClockingGate`` is a drop-in for ``payments_drain.pacing.RateGate`` (same interface:
``delay()``, ``started()``, ``finished(headers, throttled_for_s)``). What it changes:

1. **Self-clocking.** It remembers when its own requests were answered (by then HubSpot has
   surely counted them; the start time is not safe, a request is counted on arrival). Once
   the window is full, a caller may send only when one of this container's own requests leaves
   the window (answer + interval): each container replaces what it used, so the containers
   together stay within the limit without talking to each other.
2. **Booking.** ``delay()`` books the slot it hands out, so callers waiting at the same time do
   not all wake up for the same freed slot (the current gate lets every waiter send after its
   sleep, without looking again).
3. **A reserve that covers every request in flight.** ``-Remaining`` lags behind the requests
   all containers have in flight, up to MaximumConcurrency x HUBSPOT_MAX_PARALLEL_CALLS of them.
   With ``containers`` given (the template knows MaximumConcurrency and can pass it as an
   environment variable), the window counts as full once ``-Remaining`` is at most
   containers x parallel calls, so what is in flight always fits. Without it, a container counts
   on the share of ``-Remaining`` it used of the window so far, and on at most as many again as
   it has in the window (a heuristic: it still overshoots while the window first fills up).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

MARGIN_S = 0.05  # our clock and HubSpot's window edge are not the same clock


class SelfClockingGate:
    def __init__(self, limit_per_10s: int, reserve: int = 2, clock: Callable[[], float] = time.monotonic,
                 containers: int | None = None, parallel_calls: int = 4) -> None:
        self.max = limit_per_10s
        self.interval_s = 10.0
        self.in_flight_anywhere = containers * parallel_calls if containers else None
        self.reserve = max(reserve, self.in_flight_anywhere or 0)
        self.clock = clock
        self.lock = threading.Lock()
        self.in_flight = 0
        self.remaining: int | None = None
        self.credits: int | None = None  # sends allowed now; None until HubSpot has answered once
        self.sent: deque[float] = deque()  # answer times of own counted requests still in the window
        self.booked = 0  # own requests about to leave the window, already promised to a waiting caller
        self.paused_until = 0.0

    def _expire(self, now: float) -> None:
        while self.sent and self.sent[0] <= now - self.interval_s:
            self.sent.popleft()
            if self.booked:
                self.booked -= 1
            elif self.credits is not None:
                self.credits += 1

    def delay(self) -> float:
        """Seconds to wait before the next request; the slot is the caller's once it returns."""
        with self.lock:
            now = self.clock()
            self._expire(now)
            pause = max(0.0, self.paused_until - now)
            if self.credits is None or self.credits > 0:
                if self.credits is not None:
                    self.credits -= 1
                return pause
            if self.booked < len(self.sent):
                wait = self.sent[self.booked] + self.interval_s - now + MARGIN_S
            elif self.booked < len(self.sent) + self.in_flight:  # answered from now on: gone a window later
                wait = self.interval_s + MARGIN_S
            else:  # nothing of ours in the window to wait for: one request's share of it
                wait = self.interval_s / self.max * (self.booked - len(self.sent) - self.in_flight + 1)
            self.booked += 1
            return max(pause, wait)

    def started(self) -> None:
        with self.lock:
            self.in_flight += 1

    def finished(self, headers: Mapping[str, str], throttled_for_s: float = 0.0) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            self.in_flight = max(0, self.in_flight - 1)
            try:
                self.max = int(lower.get("x-hubspot-ratelimit-max", self.max))
                self.interval_s = int(lower.get("x-hubspot-ratelimit-interval-milliseconds", self.interval_s * 1000)) / 1000
                remaining = int(lower["x-hubspot-ratelimit-remaining"]) if "x-hubspot-ratelimit-remaining" in lower else None
            except ValueError:
                remaining = None
            if throttled_for_s:  # a 429 is not counted in the window, and says the window is full
                self.credits = 0
                return
            self.sent.append(self.clock())
            if remaining is None:
                return
            self.remaining = remaining
            spare = max(remaining - self.reserve, 0)
            if self.in_flight_anywhere is None:
                own = len(self.sent) + self.in_flight
                spare = min(math.floor(spare * min(1.0, own / max(self.max - remaining, 1))), own)
            self.credits = spare - (self.in_flight if self.in_flight_anywhere is None else 0)


def install_gate(containers: int | None = None, parallel_calls: int = 4) -> None:
    """Make ``build_drain`` use the proposed gate (call before the handler is imported)."""
    import functools

    import payments_drain.pacing as pacing

    # service.py binds the name when it is imported
    pacing.RateGate = functools.partial(SelfClockingGate, containers=containers, parallel_calls=parallel_calls)
