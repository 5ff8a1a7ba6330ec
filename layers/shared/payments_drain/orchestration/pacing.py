"""Pacing by HubSpot's own rate-limit headers, shared by every call of a container.

HubSpot answers each request with ``X-HubSpot-RateLimit-Max``, ``-Remaining`` and
``-Interval-Milliseconds`` for its rolling window. Nothing in urllib3 or Powertools reads them,
hence this gate. ``RateGate`` paces one container alone (several share the limit through the
rate slots: ``SlotGate``). It keeps one number, its *allowance*: how many of its own requests
may be counted in the window at once (answered and still in it, in flight, or about to start).
Its *outstanding* requests are the allowance less those answered and still in the window: in
flight, or slots it may still use (docs/performance.md, figure c).

1. **Self-clocking.** A request of ours leaving the window (a window after its answer: by then
   HubSpot has surely counted it) frees a slot for our next one; the allowance is not touched.
2. **Growth only into the room HubSpot reports.** An answer leaving ``r`` requests means at
   most ``L - r`` are counted, so the allowance grows to our answered count plus
   ``min(parallel_calls, r)``. An answer without the header (an error, a timeout) counts as one
   more than the last heard.
3. **Outstanding at most ``parallel_calls``.** When our requests leave the window and we have
   nothing to send, the allowance shrinks with them, so an idle container claims no more than
   the burst it may send when work comes back.
4. **A 429** (another app on the same account, a limit lowered) shrinks the allowance to what is
   already out and pauses every caller for the wait it tells.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable, Hashable, Mapping

from payments_drain.core import clock as clocks
from payments_drain.core.batching import Answer, throttled_s
from payments_drain.core.slot_log import CLOCK_MS, SLACK_MS, round_for

CALL_MS = 2_000  # a slot later than the invocation's calls' end less this is of no use
BUSY_S = (0.5, 2.0)  # a claim throttled or raced is tried again after a random wait in this range
MARGIN_S = CLOCK_MS / 1000  # our clock and HubSpot's window edge are not the same clock
CALL_MS_WEIGHT = 0.2  # of the newest answered call in the container's running mean of call durations


class RateGate:
    def __init__(
        self,
        limit_per_10s: int,
        *,
        parallel_calls: int = 1,
        clock: Callable[[], float] = clocks.monotonic,
    ) -> None:
        self.max = limit_per_10s
        self.interval_s = 10.0
        self.parallel = max(1, parallel_calls)
        self.clock = clock
        self.lock = threading.Lock()
        self.answered: deque[float] = deque()  # answer times of our counted requests still in the window
        self.in_flight = 0
        self.promised = 0  # slots delay() handed out whose request has not started yet
        self.allowance = max(1, min(self.parallel, limit_per_10s))
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

    def finished(
        self, headers: Mapping[str, str], throttled_for_s: float = 0.0, *, answered: bool = False
    ) -> None:
        """A call is over: ``headers`` of its answer (none without one), ``throttled_for_s`` the
        wait a 429 tells; ``answered``: an HTTP answer came (used by ``SlotGate``)."""
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

    def begin(self, calls_end_ms: int, calls: int) -> None:
        """An invocation starts (``SlotGate`` claims its slots for it); nothing to do here."""

    def end(self) -> None:
        """An invocation ends; nothing to do here."""

    def no_slot_until_ms(self) -> int | None:
        return None  # the headers say nothing of the others: a wait here is never a hold

    def _grow(self, remaining: int) -> None:
        if remaining > 0:
            grown = len(self.answered) + min(self.parallel, remaining)
            self.allowance = max(self.allowance, grown)

    def _expire(self, now: float) -> None:
        """Drop our requests that have left the window, shrinking the allowance as of the moment
        each left (not as of now): our outstanding is at most ``parallel_calls`` at every instant,
        also between two of our calls."""
        while self.answered and self.answered[0] <= now - self.interval_s:
            left_at = self.answered.popleft() + self.interval_s
            still_in = sum(1 for t in self.answered if t <= left_at)  # answers after it came later
            self.allowance = max(1, min(self.allowance, still_in + self.parallel))


class SlotGate:
    """A rate gate whose requests start only at slots claimed on the timeline every container
    shares (``rate_slots``; ``core.slot_log`` for where a slot may go, and when one passes). When a
    call of the invocation has no slot, the gate claims one per call not started yet (one write per
    invocation when nothing races it) and hands them out in order; it remembers which slot each
    call took and when its answer came, and its next claim writes that down. Its own slots go a
    round apart per ``parallel`` callers, a round as long as its calls take (``slot_log.round_for``):
    until its first answer it claims one round only. When no slot fits
    before the invocation's last call, or DynamoDB throttles the item, it says until when there is
    no slot (``no_slot_until_ms``): the sender holds its payments on the queue until then. A 429
    (another app, a lower limit) still pauses every caller (``RateGate``, rule 4). Pacing by the
    headers alone would keep ``(containers - 1) x parallel_calls`` of the window for the others'
    calls in flight, room lost when they are idle; the slots keep none.
    """

    def __init__(
        self,
        slots,
        *,
        wall_ms: Callable[[], int] = clocks.wall_ms,
        rng: random.Random | None = None,
        caller: Callable[[], Hashable] = threading.get_ident,  # a model's greenlets: getcurrent
    ) -> None:
        self.slots = slots
        self.wall_ms = wall_ms
        self.caller = caller
        self.rng = rng or random.Random()
        self.lock = threading.Lock()
        self.claiming = threading.Lock()
        self.starts: deque[int] = deque()  # our slots not yet used, in order
        self.calls_left = 0  # calls of this invocation not started yet
        self.promised = 0  # slots delay() handed out whose call has not started yet
        self.reach_ms = 0
        self.paused_until_ms = 0
        self.retry_at_ms = 0  # no claim before this: a ticket, or a claim throttled or raced
        self.taken: dict[Hashable, int] = {}  # by caller (``caller()``): the slot its call holds
        self.began: dict[Hashable, int] = {}  # by caller: when its call started
        self.call_ms: float | None = None  # how long our answered calls take, a running mean
        self.done: list[tuple[int, int | None]] = []  # for the next claim (``DynamoRateSlots.claim``)

    def begin(self, calls_end_ms: int, calls: int) -> None:
        with self.lock:
            self.reach_ms = calls_end_ms - CALL_MS
            self.calls_left = calls
            self.retry_at_ms = 0  # a ticket is the batch's: a new batch takes its own place in line

    def delay(self) -> float:
        """0: send now, the slot is the caller's (``started()`` next). Otherwise the seconds to
        wait before asking again."""
        caller = self.caller()
        with self.lock:
            wait_ms, want = self._next(self.wall_ms(), caller)
            if want == 0:
                return wait_ms / 1000
            if not self.claiming.acquire(blocking=False):
                return 0.01  # another of our calls is claiming: ask again in a moment
            if self.call_ms is None:  # rounds not sized yet: one round now, the rest once answered
                want = min(want, self.slots.parallel)
            done, self.done = self.done, []
        try:
            now_ms = self.wall_ms()
            # On an error nothing of ``done`` is sent again: the write may have gone through, and a
            # slot left as claimed only binds longer.
            claim = self.slots.claim(
                want, now_ms, self.reach_ms, done, clock=self.wall_ms, round_ms=round_for(self.call_ms or 0)
            )
        finally:
            self.claiming.release()
        with self.lock:
            if not claim.settled:
                self.done[:0] = done
            self.starts.extend(claim.starts_ms)  # later than any we hold: the timeline only grows
            if claim.busy:
                self.retry_at_ms = now_ms + round(1000 * self.rng.uniform(*BUSY_S))
            elif claim.retry_at_ms is not None:
                self.retry_at_ms = claim.retry_at_ms
            wait_ms, want = self._next(self.wall_ms(), caller)
        return wait_ms / 1000 if want == 0 else 0.01

    def _next(self, now_ms: int, caller: Hashable) -> tuple[int, int]:
        """(ms to wait, 0), or (0, slots to claim) when a claim is due."""
        if self.paused_until_ms > now_ms:
            return self.paused_until_ms - now_ms, 0
        while self.starts and self.starts[0] < now_ms - SLACK_MS:
            # passed unused (its call waited on something else): the next claim takes it out
            self.done.append((self.starts.popleft(), None))
        if self.starts:
            if self.starts[0] <= now_ms:
                self.taken[caller] = self.starts.popleft()
                self.promised += 1
                return 0, 0
            return self.starts[0] - now_ms, 0
        if self.retry_at_ms > now_ms:
            return self.retry_at_ms - now_ms, 0
        return 0, max(1, self.calls_left - self.promised)

    def no_slot_until_ms(self) -> int | None:
        """When the gate can next hand out a slot, if that is later than now: a call that cannot
        wait so long is held on the queue until then (``Wait.NO_SLOT_YET``)."""
        with self.lock:
            now_ms = self.wall_ms()
            later = max(self.retry_at_ms, self.starts[0] if self.starts else 0)
            return later if later > now_ms else None

    def started(self) -> None:
        with self.lock:
            self.promised = max(0, self.promised - 1)
            self.calls_left = max(0, self.calls_left - 1)
            self.began[self.caller()] = self.wall_ms()

    def cancel(self) -> None:
        with self.lock:
            self.promised = max(0, self.promised - 1)
            if (slot := self.taken.pop(self.caller(), None)) is not None:
                self.done.append((slot, None))  # no call used it

    def finished(
        self, headers: Mapping[str, str], throttled_for_s: float = 0.0, *, answered: bool = False
    ) -> None:
        """A call is over. ``answered``: an HTTP answer came, so HubSpot counted the request (if at
        all) before now: its slot binds a window after now, no longer. Without one (a timeout, an
        error) the slot binds its full time. A 429 pauses every caller; the slots that pass
        meanwhile are not kept (others may use what HubSpot's window has left only through the
        timeline)."""
        with self.lock:
            now_ms, caller = self.wall_ms(), self.caller()
            slot = self.taken.pop(caller, None)
            began = self.began.pop(caller, None)
            if slot is not None and answered:
                self.done.append((slot, now_ms))
            if began is not None and answered:  # a timeout says how long we waited, not HubSpot
                took = now_ms - began
                self.call_ms = (
                    took if self.call_ms is None else self.call_ms + (took - self.call_ms) * CALL_MS_WEIGHT
                )
            if throttled_for_s:
                self.paused_until_ms = max(self.paused_until_ms, now_ms + round(throttled_for_s * 1000))

    def end(self) -> None:
        """The invocation is over: its unused slots pass (the next claim takes them out)."""
        with self.lock:
            self.done.extend((slot, None) for slot in self.starts)
            self.starts.clear()
            self.calls_left = self.promised = 0


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


def wait_for_slot(gate: RateGate | SlotGate, budget, sleep, need_s: float) -> bool:
    """Sleep until ``gate`` gives a slot for a call that needs ``need_s`` of the budget; False, with
    no slot kept, when the wait and the call do not fit (raises ``RateSlotsUnavailable``)."""
    while (delay := gate.delay()) > 0:  # 0: the slot is ours, the call starts now
        if budget.left() < delay + need_s:
            return False
        sleep(delay)
    if budget.left() < need_s:  # the slot came late (a slow slots table)
        gate.cancel()
        return False
    return True


def call_in_slot(
    gate: RateGate | SlotGate, daily: DailyLimit, send: Callable[..., Answer], *args, **kwargs
) -> tuple[Answer, bool]:
    """One HubSpot call, ``send(*args, **kwargs)`` (a write or a read-back), in the slot
    ``wait_for_slot`` gave: the gate and the daily limit learn its answer. Returns the answer and
    whether it spent the daily limit."""
    gate.started()
    try:
        answer = send(*args, **kwargs)
    except BaseException:
        gate.finished({})  # it may have been counted: it holds its slot for a window
        raise
    gate.finished(answer.headers, throttled_s(answer), answered=answer.status is not None)
    return answer, daily.observe(answer.status, answer.body, answer.headers)
