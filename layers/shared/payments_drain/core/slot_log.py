"""Pure core: HubSpot's rate limit as a sliding log of *slots*, moments at which a request may
start, that every container's claims agree on (``adapters.rate_slots`` keeps the log in one
DynamoDB item and changes it by conditional writes; this module is the arithmetic on it).

A slot is never less than ``gap_ms`` (the window + ``MARGIN_MS``) after the slot ``limit`` places
before it: a request counted in HubSpot's rolling window was counted less than ``MARGIN_MS`` after
its slot (``SLACK_MS`` to start, the rest to reach HubSpot's counter), so no window counts more
than ``limit``. A full window may go at once (the log allows bursts exactly as the rolling window
does); a claimant's own slots are staggered ``round_ms`` apart per ``parallel`` callers.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

MARGIN_MS = 400  # SLACK_MS to start the request, and its trip to HubSpot's counter
SLACK_MS = 150  # a slot not started this long after its moment has passed
CLOCK_MS = 50  # containers' clocks may disagree by this much (Lambda's agree far closer)
# A claimant's own slots: one round of its parallel callers later, at least this much. A caller
# answered before its next slot waits for it; one answered later than ``SLACK_MS`` after it lets it
# pass (the next claim takes it out: a write more). For calls of 100-200 ms (the sandbox's 150 +- 50,
# figures c and h): 150 lets an early answer start the next round at once and lets none pass in
# figure c's batches; 200 kept callers waiting ~50 ms a round (0.2 s of figure c's 2.24-2.47 s),
# 100 lets most batches' last round pass (docs/performance.md, c).
ROUND_MS = 150
# Calls slower than ``ROUND_MS + SLACK_MS`` would let every later slot of theirs pass (and claim
# again): a claimant's rounds follow its calls' own duration (``round_for``), up to this.
ROUND_MAX_MS = 2_000
GRID_MS = 50  # slots fall on this grid (fewer runs of equal slots: a smaller item); divides the others
# A slot moved to its answer (``settle``) falls on this coarser grid, later: answers spread over
# every 50 ms would make up to ``limit`` runs and the item 2 write units (figure h).
SETTLED_GRID_MS = 100


def round_for(call_ms: float) -> int:
    """A claimant's round for calls lasting ``call_ms`` (its recent answers): that long, to the
    nearest grid step, within ``ROUND_MS``..``ROUND_MAX_MS``. Measured in figure h's model (docs/performance.md,
    "h with slower answers"): at 50 containers and calls of 300-600 ms, rounds of 150 ms drained
    in 1.22x the bound with 1,474 writes, rounds as long as the calls in 1.09x."""
    grid = round(call_ms / GRID_MS) * GRID_MS  # the nearest: a round up to 200 for calls of
    # 150 +- 50 ms kept callers waiting ~50 ms a round (figure c at 1.23x, against 1.12x at 150)
    return min(ROUND_MAX_MS, max(ROUND_MS, grid))


@dataclass(frozen=True, slots=True)
class SlotRule:
    """Where new slots may go in a log: ``limit`` per ``gap_ms``, ``parallel`` callers a claimant."""

    limit: int
    gap_ms: int
    parallel: int = 1
    round_ms: int = ROUND_MS

    def plan(self, log: list[int], want: int, now_ms: int) -> list[int]:
        """The earliest ``want`` slots from ``now_ms`` that ``log`` (sorted) leaves: each where no
        span of ``gap_ms`` around it holds ``limit`` slots already; ours ``round_ms`` apart per
        ``parallel`` callers. Another container's later slots do not push ours back. The first
        may lie up to a grid step before ``now_ms``: a slot is the earliest moment its request
        may be counted, so an earlier one binds longer, never less."""
        taken = list(log)
        out: list[int] = []
        for j in range(want):
            start = max(now_ms // GRID_MS * GRID_MS, out[-1] if out else 0)
            if j >= self.parallel:  # our own callers: one round later
                start = max(start, out[j - self.parallel] + self.round_ms)
            while (crowded := self._crowded(taken, start)) is not None:
                start = crowded + self.gap_ms
            bisect.insort(taken, start)
            out.append(start)
        return out

    def _crowded(self, taken: list[int], start: int) -> int | None:
        """If ``limit`` slots in a row of ``taken`` and one at ``start`` would all lie within less
        than ``gap_ms``, the first of them (the slot must come ``gap_ms`` after it); else None."""
        low = bisect.bisect_right(taken, start - self.gap_ms)
        high = min(bisect.bisect_left(taken, start + self.gap_ms), len(taken) - self.limit + 1)
        for first in range(low, high):
            last = taken[first + self.limit - 1]
            if max(last, start) - min(taken[first], start) < self.gap_ms:
                return taken[first]
        return None


def settle(log: list[int], done: Sequence[tuple[int, int | None]]) -> list[int]:
    """``log`` (sorted) with ``done`` written in: each slot of ours whose call was answered at
    ``t`` moves to ``t + CLOCK_MS - MARGIN_MS``, up to its grid (so it binds until ``t + window +
    CLOCK_MS``: its request was counted before its answer), each slot no call used is taken out.
    A slot no longer in the log (passed out of it) is left so. Slots are moments: another
    container's slot at the same moment is the same entry, whichever of them is moved."""
    if not done:
        return log
    out = list(log)
    for slot, answered_ms in done:
        at = bisect.bisect_left(out, slot)
        if at == len(out) or out[at] != slot:
            continue
        del out[at]
        if answered_ms is not None:
            moved = -(-(answered_ms + CLOCK_MS - MARGIN_MS) // SETTLED_GRID_MS) * SETTLED_GRID_MS
            bisect.insort(out, max(0, moved))  # epoch ms: never before 0 (a test's clock may start there)
    return out


def encode(log: list[int]) -> str:
    """The log (sorted) as "first;gap.count,...": runs of equal slots, each ``gap`` ms after the
    run before, numbers in base 36 (the item stays under DynamoDB's 1 KB write unit)."""
    runs: list[list[int]] = []
    for start in log:
        if runs and runs[-1][0] == start:
            runs[-1][1] += 1
        else:
            runs.append([start, 1])
    first = log[0] if log else 0
    previous, parts = first, []
    for start, count in runs:
        parts.append(f"{_b36(start - previous)}.{_b36(count)}")
        previous = start
    return f"{_b36(first)};" + ",".join(parts)


def decode(text: str | None) -> list[int] | None:
    """The log of ``encode``; [] for none, None for a text that is not one (read as empty)."""
    if text is None:
        return []
    try:
        first, runs = text.split(";")
        log, at = [], int(first, 36)
        for run in filter(None, runs.split(",")):
            gap, count = run.split(".")
            at += int(gap, 36)
            log += [at] * int(count, 36)
        return log
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _b36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
        if number == 0:
            return digits
