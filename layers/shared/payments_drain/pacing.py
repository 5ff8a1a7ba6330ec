"""Pacing by HubSpot's own rate-limit headers, shared by every call of a container.

HubSpot answers each request with ``X-HubSpot-RateLimit-Max``, ``-Remaining`` and
``-Interval-Milliseconds`` for its rolling window. Nothing in urllib3 or Powertools reads them,
hence this gate. It slows into the window instead of running into a 429:

1. **Self-clocking.** It remembers when its own requests were answered (by then HubSpot has
   surely counted them). Once the window is full, a caller may send only when one of this
   container's own requests leaves the window: each container replaces what it used, so the
   containers together stay within the limit without talking to each other.
2. **Booking.** ``delay()`` books the slot it hands out, so callers waiting at the same time do
   not all wake for the same freed slot.
3. **A reserve for what is in flight.** ``-Remaining`` lags behind the requests every container
   has in flight, up to ``containers x parallel_calls`` of them (the event source's
   MaximumConcurrency times HUBSPOT_MAX_PARALLEL_CALLS), so the window counts as full once
   ``-Remaining`` is down to that.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

MARGIN_S = 0.05  # our clock and HubSpot's window edge are not the same clock


class RateGate:
    def __init__(
        self,
        limit_per_10s: int,
        *,
        containers: int = 1,
        parallel_calls: int = 1,
        reserve: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max = limit_per_10s
        self.interval_s = 10.0
        self.reserve = max(reserve, containers * parallel_calls)
        self.clock = clock
        self.lock = threading.Lock()
        self.in_flight = 0
        self.credits: int | None = None  # sends allowed now; None until HubSpot has answered once
        self.answered: deque[float] = deque()  # answer times of our counted requests still in the window
        self.booked = 0  # of those, slots already promised to a waiting caller
        self.paused_until = 0.0

    def delay(self) -> float:
        """Seconds to wait before the next request; the slot is the caller's once it has waited."""
        with self.lock:
            now = self.clock()
            self._expire(now)
            pause = max(0.0, self.paused_until - now)
            if self.credits is None or self.credits > 0:
                if self.credits is not None:
                    self.credits -= 1
                return pause
            if self.booked < len(self.answered):  # the next of ours to leave the window
                wait = self.answered[self.booked] + self.interval_s - now + MARGIN_S
            elif self.booked < len(self.answered) + self.in_flight:  # answered soon, gone a window later
                wait = self.interval_s + MARGIN_S
            else:  # every slot of ours is promised: after the last of them, one request's share each
                last = self.answered[-1] + self.interval_s - now + MARGIN_S if self.answered else 0.0
                wait = last + self.interval_s / self.max * (
                    self.booked - len(self.answered) - self.in_flight + 1
                )
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
                self.interval_s = (
                    int(lower.get("x-hubspot-ratelimit-interval-milliseconds", self.interval_s * 1000)) / 1000
                )
                remaining = (
                    int(lower["x-hubspot-ratelimit-remaining"])
                    if "x-hubspot-ratelimit-remaining" in lower
                    else None
                )
            except ValueError:
                remaining = None
            if throttled_for_s:  # a 429 is not counted in the window, and says the window is full
                self.credits = 0
                self.paused_until = max(self.paused_until, self.clock() + throttled_for_s)
                return
            self.answered.append(self.clock())
            if remaining is not None:
                self.credits = max(remaining - self.reserve, 0)

    def _expire(self, now: float) -> None:
        while self.answered and self.answered[0] <= now - self.interval_s:
            self.answered.popleft()
            if self.booked:
                self.booked -= 1
            elif self.credits is not None:
                self.credits += 1


class DailyLimit:
    """HubSpot's daily limit, remembered by the container across invocations.

    Once HubSpot answers 429 with policy ``DAILY`` (or a call leaves
    ``X-HubSpot-RateLimit-Daily-Remaining`` at 0), no call starts until the next probe, at most
    one every ``probe_every_s``: one call asks whether the limit has reset, the others wait.
    Nothing in urllib3 or Powertools keeps such a state, hence this class.
    """

    def __init__(self, probe_every_s: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.probe_every_s = probe_every_s
        self.clock = clock
        self.lock = threading.Lock()
        self.spent = False
        self.next_probe = 0.0

    def may_call(self) -> bool:
        """Whether a call may start now; while the limit is spent, only the due probe may."""
        with self.lock:
            if not self.spent:
                return True
            now = self.clock()
            if now < self.next_probe:
                return False
            self.next_probe = now + self.probe_every_s  # this call is the probe
            return True

    def observe(self, status: int | None, body: object, headers: Mapping[str, str]) -> bool:
        """Learn from one answer; whether it says the daily limit is spent. Only a 2xx without
        that news clears it: a 5xx or a timeout says nothing about the day's requests."""
        spent = daily_limit_spent(status, body, headers)
        with self.lock:
            if spent and not self.spent:
                self.next_probe = self.clock() + self.probe_every_s
            if spent or (status is not None and 200 <= status < 300):
                self.spent = spent
        return spent

    def seconds_to_probe(self) -> float:
        with self.lock:
            return max(0.0, self.next_probe - self.clock()) if self.spent else 0.0


def daily_limit_spent(status: int | None, body: object, headers: Mapping[str, str]) -> bool:
    """A 429 of policy DAILY, or an answer saying no request is left today."""
    if status == 429 and isinstance(body, dict) and str(body.get("policyName", "")).upper() == "DAILY":
        return True
    remaining = next(
        (v for k, v in headers.items() if k.lower() == "x-hubspot-ratelimit-daily-remaining"), None
    )
    return remaining is not None and remaining.strip() == "0"
