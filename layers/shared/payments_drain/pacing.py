"""Pacing by HubSpot's own rate-limit headers, shared by every call of a container.

HubSpot answers each request with ``X-HubSpot-RateLimit-Max``, ``-Remaining`` and
``-Interval-Milliseconds`` for its rolling window. Nothing in urllib3 or Powertools reads them,
hence this gate. Containers do not talk to each other; each keeps one number, its *allowance*:
how many of its own requests may be counted in the window at once (answered and still in it,
in flight, or about to start). Its *outstanding* requests are the allowance less those answered
and still in the window: in flight, or slots it may still use (docs/performance.md, figure c).

1. **Self-clocking.** A request of ours leaving the window (a window after its answer: by then
   HubSpot has surely counted it) frees a slot for our next one; the allowance is not touched.
2. **Growth only into room nobody else can claim.** An answer leaving ``r`` requests means at
   most ``L - r`` are counted; every other container may still add its outstanding requests,
   at most ``parallel_calls`` each (``containers`` is the event source's MaximumConcurrency).
   So the allowance grows to our answered count plus ``min(parallel_calls, r - others)``, where
   ``others = (containers - 1) x parallel_calls``: what is counted plus what anybody may still
   add stays within the limit, and no 429 comes from our own containers. An answer without the
   header (an error, a timeout) counts as one more than the last heard.
3. **Outstanding at most ``parallel_calls``.** When our requests leave the window and we have
   nothing to send, the allowance shrinks with them, so an idle container claims no more than
   the burst it may send when work comes back.
4. **A 429** (another app on the same account, a limit lowered) shrinks the allowance to what is
   already out and pauses every caller for the wait it tells.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping

from payments_drain import clock as clocks

MARGIN_S = 0.05  # our clock and HubSpot's window edge are not the same clock


class RateGate:
    def __init__(
        self,
        limit_per_10s: int,
        *,
        containers: int = 1,
        parallel_calls: int = 1,
        clock: Callable[[], float] = clocks.monotonic,
    ) -> None:
        self.max = limit_per_10s
        self.interval_s = 10.0
        self.parallel = max(1, parallel_calls)
        self.others = (max(1, containers) - 1) * self.parallel
        self.clock = clock
        self.lock = threading.Lock()
        self.answered: deque[float] = deque()  # answer times of our counted requests still in the window
        self.in_flight = 0
        self.promised = 0  # slots delay() handed out whose request has not started yet
        self.allowance = max(1, min(self.parallel, limit_per_10s // max(1, containers)))
        self.paused_until = 0.0
        self.remaining: int | None = None  # the last -Remaining heard

    def delay(self) -> float:
        """0: send now, the slot is the caller's (``started()`` next). Otherwise the seconds to
        wait before asking again: until one of our requests leaves the window, or a pause ends."""
        with self.lock:
            now = self.clock()
            self._expire(now)
            if self.paused_until > now:
                return self.paused_until - now
            used = len(self.answered) + self.in_flight + self.promised
            if used < self.allowance:
                self.promised += 1
                return 0.0
            k = used - self.allowance  # the k-th of ours to leave the window frees our slot
            if k < len(self.answered):
                return self.answered[k] + self.interval_s - now + MARGIN_S
            return self.interval_s  # one still in flight: it leaves a window after its answer

    def started(self) -> None:
        with self.lock:
            self.promised = max(0, self.promised - 1)
            self.in_flight += 1

    def cancel(self) -> None:
        """A slot ``delay()`` promised will not be used after all."""
        with self.lock:
            self.promised = max(0, self.promised - 1)

    def finished(self, headers: Mapping[str, str], throttled_for_s: float = 0.0) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            self.in_flight = max(0, self.in_flight - 1)
            now = self.clock()
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
                self.allowance = max(1, len(self.answered) + self.in_flight + self.promised)
                self.paused_until = max(self.paused_until, now + throttled_for_s)
                return
            self.answered.append(now)
            self._expire(now)
            if remaining is None:  # an error or a timeout without headers: one fewer than last heard
                remaining = (self.remaining if self.remaining is not None else self.max) - 1
            self.remaining = remaining
            self._grow(remaining)

    def begin(self, function_deadline_ms: int, calls: int) -> None:
        """An invocation starts (``SlotGate`` claims its slots for it); nothing to do here."""

    def end(self, give_back: bool = True) -> None:
        """An invocation ends (``SlotGate`` gives its slots back); nothing to do here."""

    def _grow(self, remaining: int) -> None:
        if remaining - self.others > 0:
            grown = len(self.answered) + min(self.parallel, remaining - self.others)
            self.allowance = max(self.allowance, grown)

    def _expire(self, now: float) -> None:
        """Drop our requests that have left the window, shrinking the allowance as of the moment
        each left (not as of now): other containers count on our outstanding being at most
        ``parallel_calls`` at every instant, also between two of our calls."""
        while self.answered and self.answered[0] <= now - self.interval_s:
            left_at = self.answered.popleft() + self.interval_s
            still_in = sum(1 for t in self.answered if t <= left_at)  # answers after it came later
            self.allowance = max(1, min(self.allowance, still_in + self.parallel))


class SlotGate(RateGate):
    """A rate gate whose allowance is the slots it holds in the shared store (``rate_slots``).

    With several containers, pacing by the headers keeps ``(containers - 1) x parallel_calls`` of
    the window for the others' calls in flight (``RateGate``, rule 2); when the others are idle,
    that room is lost. Here no room is kept: a container claims free slots when its calls need
    them (one per call of the invocation not started yet: one claim per batch when the window has
    room; the calls start within a second, so the slots are used in this window), holds them for the
    invocation, sends at most one request per held slot in any window (rule 1: self-clocking) and
    gives them back at ``end()``, each free once its last request has left HubSpot's window. What
    every container may have counted or in flight is then at most the slots it holds, and the
    slots are the limit. A 429 (another app, a lower limit) still pauses every caller (rule 4).
    """

    POLL_S = 0.25  # a slot held by another container may come back before its hold ends
    HOLD_MARGIN_MS = 5_000  # a request sent just before the deadline may still be on its way

    def __init__(
        self,
        slots,
        limit_per_10s: int,
        *,
        parallel_calls: int = 1,
        clock: Callable[[], float] = clocks.monotonic,
        wall_ms: Callable[[], int] = clocks.wall_ms,
    ) -> None:
        super().__init__(limit_per_10s, parallel_calls=parallel_calls, clock=clock)
        self.slots = slots
        self.wall_ms = wall_ms
        self.allowance = 0
        self.held: list[str] = []
        self.hold_until_ms = 0
        self.calls_left = 0  # calls of this invocation not started yet
        self.next_read = 0.0  # no slot can show free in the store before this (our clock)
        self.claiming = threading.Lock()

    def begin(self, function_deadline_ms: int, calls: int) -> None:
        with self.lock:
            self.hold_until_ms = function_deadline_ms + int(self.interval_s * 1000) + self.HOLD_MARGIN_MS
            self.calls_left = calls
            self.next_read = 0.0

    def delay(self) -> float:
        wait = super().delay()
        if wait <= 0:
            return wait
        with self.lock:
            now = self.clock()
            if self.paused_until > now:
                return wait
            if now < self.next_read:
                return min(wait, self.next_read - now)
            want = max(1, self.calls_left - self.promised)  # every call of ours not started
        if not self.claiming.acquire(blocking=False):
            return min(wait, 0.01)  # another of our calls is claiming: ask again in a moment
        try:
            got, free_at_ms = self.slots.claim(want, self.hold_until_ms, self.wall_ms())
        finally:
            self.claiming.release()
        with self.lock:
            now = self.clock()
            self.held += got
            self.allowance += len(got)
            self.next_read = now + min(self.POLL_S, max(0.0, (free_at_ms - self.wall_ms()) / 1000))
        return super().delay() if got else min(wait, max(self.next_read - now, 0.001))

    def started(self) -> None:
        super().started()
        with self.lock:
            self.calls_left = max(0, self.calls_left - 1)

    def end(self, give_back: bool = True) -> None:
        """Give the held slots back: one per request of ours still in the window, free when it
        leaves (HubSpot counted it before its answer); the others free now. Slots of calls still
        out (none once every chunk has settled) stay held until their hold ends, and so do all of
        them without ``give_back`` (no time left for the write)."""
        with self.lock:
            now = self.clock()
            self._expire(now)
            out = self.in_flight + self.promised
            keep, give = self.held[:out], self.held[out:]
            to_wall = self.wall_ms() - now * 1000
            free_at = dict.fromkeys(give, 0)  # free now, but one per request still in the window
            for name, at in zip(give, sorted(self.answered, reverse=True)):
                free_at[name] = round(to_wall + (at + self.interval_s + MARGIN_S) * 1000)
            self.held, self.allowance = keep, len(keep)
            self.answered.clear()  # the store has them now
            hold_until_ms = self.hold_until_ms
        if give_back:
            self.slots.release(free_at, hold_until_ms)

    def _grow(self, remaining: int) -> None:
        """The allowance grows only by claimed slots, never by what the headers say."""

    def _expire(self, now: float) -> None:
        while self.answered and self.answered[0] <= now - self.interval_s:
            self.answered.popleft()  # its slot is free for our next request; still ours


class DailyLimit:
    """HubSpot's daily limit, remembered by the container across invocations.

    Once HubSpot answers 429 with policy ``DAILY`` (or a call leaves
    ``X-HubSpot-RateLimit-Daily-Remaining`` at 0), no call starts until the next probe, at most
    one every ``probe_every_s``: one call asks whether the limit has reset, the others wait.
    Nothing in urllib3 or Powertools keeps such a state, hence this class.
    """

    def __init__(self, probe_every_s: float = 300.0, clock: Callable[[], float] = clocks.monotonic) -> None:
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
        that news clears it: a 5xx or a timeout says nothing about the day's requests, so a probe
        answered so has not probed, and the next call may probe at once (else a payment at its
        last delivery would wait out its hold on a question nobody answered)."""
        spent = daily_limit_spent(status, body, headers)
        with self.lock:
            if spent and not self.spent:
                self.next_probe = self.clock() + self.probe_every_s
            if spent or (status is not None and 200 <= status < 300):
                self.spent = spent
            elif self.spent:
                self.next_probe = self.clock()
        return spent

    def is_spent(self) -> bool:
        with self.lock:
            return self.spent

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
