"""Pure core: how long a retry stays hidden on the payments queue, within what SQS accepts.

A retry that only waits (HubSpot unavailable or its daily limit spent, the ledger or the rate
slots unavailable, the payment claimed by another invocation, a configuration HubSpot refuses) is
*held*: its visibility is set so that it comes back when sending can resume, instead of every
visibility timeout (each delivery counts against maxReceiveCount; that budget is kept for real
failures). Two of SQS's limits bound every hold (``limits``):

- the total visibility of one receive may not pass 12 h counted from that receive: a longer
  ChangeMessageVisibility is refused, not shortened. Lambda does not say when its event source
  received a message; the first receive's time is in the record (ApproximateFirstReceiveTimestamp),
  and for a later one the invocation's start less the batching window is the earliest it can
  have been. The hold is clamped to what is left of the 12 h, less ``RECEIVE_MARGIN_S``;
- a message older than the queue's retention is deleted silently, held or not: a retry that would
  come back after its retention less ``RETENTION_MARGIN_S`` is reported instead (``expiring``),
  while the invocation can still write its failure report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from payments_drain.core.limits import SQS_MAX_RETENTION_S, SQS_MAX_VISIBILITY_S
from payments_drain.core.outcomes import Message, Outcome, Wait

MAX_DOUBLINGS = 4
RECEIVE_MARGIN_S = 60  # the event source's poll and our clock against SQS's
RETENTION_MARGIN_S = 3_600  # a report is written at least this long before SQS would drop the message
CLAIM_MARGIN_S = 5  # after the other claim's end, the claim is surely free
# Base holds: the same for every outage (an AWS outage can last as long as HubSpot's). config's
# and template.yaml's defaults (tests/template/test_template_homes.py).
OUTAGE_HOLD_S = 600
HOLD_BASE_S = {
    Wait.HUBSPOT_UNAVAILABLE: OUTAGE_HOLD_S,
    Wait.DAILY_LIMIT: 7_200,
    Wait.LEDGER_UNAVAILABLE: OUTAGE_HOLD_S,
    Wait.RATE_SLOTS_UNAVAILABLE: OUTAGE_HOLD_S,
    Wait.CONFIGURATION: OUTAGE_HOLD_S,
}


@dataclass(frozen=True, slots=True)
class QueueTimes:
    """What the drain knows of its queue and event source (the template passes them; these defaults
    are config's and template.yaml's, tests/template holds them equal)."""

    visibility_timeout_s: int = 370
    retention_s: int = SQS_MAX_RETENTION_S.value
    batching_window_s: int = 0
    max_receive_count: int = 0  # the redrive policy's; 0: unknown (no last-delivery rule)


@dataclass(frozen=True, slots=True)
class Hold:
    seconds: int | None  # None: not held (back after the queue's visibility timeout)
    expiring: bool = False  # it would come back too close to its retention: report it now


def backoff_hold_s(base_s: int, receive_count: int) -> int:
    """``base_s`` doubled at each delivery up to 16 times it (a message redelivered often for other
    reasons must not be hidden for hours at its first wait). Clamped by ``plan`` to what SQS takes;
    the hold before the last delivery is the longest SQS takes (``plan``). With base 600 s and
    MaxReceiveCount 5 a payment waits 10 + 20 + 40 minutes and then just under 12 hours before its
    last delivery: 13 hours of outage send nothing to the dead-letter queue; with 7,200 s, 26
    hours, so a spent daily limit has reset before the last delivery, counted from the first receive
    even when other waits took some of the deliveries (``_cover_floor_s``)."""
    return int(base_s * 2 ** min(max(receive_count - 1, 0), MAX_DOUBLINGS))


def received_at_s(message: Message, started_s: float, times: QueueTimes) -> float:
    """The earliest the event source can have received this delivery of the message."""
    earliest = started_s - times.batching_window_s - RECEIVE_MARGIN_S
    if message.receive_count <= 1 and message.first_receive_ms is not None:
        return min(earliest, message.first_receive_ms / 1000)
    return earliest


def plan(
    message: Message,
    outcome: Outcome,
    now_s: float,
    started_s: float,
    times: QueueTimes,
    bases: dict[Wait, int],
) -> Hold:
    """The hold of one retry: its wait's backoff, clamped to SQS's 12 h per receive and to the
    message's retention; ``expiring`` when it cannot come back before its retention ends."""
    received = received_at_s(message, started_s, times)
    cap = int(SQS_MAX_VISIBILITY_S.value - (now_s - received) - RECEIVE_MARGIN_S)
    seconds = _wanted_s(message, outcome, now_s, times, bases)
    if seconds is not None and 0 < times.max_receive_count <= message.receive_count + 1:
        # Its next receive is its last before the dead-letter queue: SQS moves it there at the one
        # after. A wait gets the longest hold SQS allows, whatever the backoff says.
        seconds = cap
    if seconds is not None:
        seconds = max(0, min(seconds, cap))
    if message.sent_ms is None:
        return Hold(seconds)
    deadline = message.sent_ms / 1000 + times.retention_s - RETENTION_MARGIN_S
    back = now_s + seconds if seconds is not None else received + times.visibility_timeout_s
    if back + times.visibility_timeout_s <= deadline:
        return Hold(seconds)
    # Back too late to be tried and still reported in time: shorten the hold so that it comes back
    # with a delivery to spare; if not even that fits (a minute at least), it is reported now.
    room = int(deadline - times.visibility_timeout_s - now_s)
    if room >= RECEIVE_MARGIN_S:
        return Hold(min(room, cap))
    return Hold(seconds, expiring=True)


def _cover_floor_s(message: Message, now_s: float, times: QueueTimes, base_s: int) -> int:
    """The shortest hold that still keeps a wait's promise: its backoff series (``backoff_hold_s``
    up to the last delivery, the longest hold before it) covers that long from the message's first
    receive, whatever else took some of its deliveries. Seed 60577 of the simulated week: a spent
    day's 2 h hold, then one 20-minute hold on the rate slots table, left the day's 8 h and 12 h
    holds 2 h short of the day's end, and the payment reached the dead-letter queue. So a wait
    makes up, in this hold, what the holds after it (at most one 12 h hold each) cannot."""
    last = times.max_receive_count
    if last <= 0 or message.first_receive_ms is None:
        return 0
    longest = int(SQS_MAX_VISIBILITY_S.value) - 2 * RECEIVE_MARGIN_S - times.batching_window_s
    cover = sum(backoff_hold_s(base_s, count) for count in range(1, last - 1)) + longest
    holds_after = max(last - 1 - message.receive_count, 0)
    return max(0, math.ceil(message.first_receive_ms / 1000 + cover - now_s - holds_after * longest))


def _wanted_s(
    message: Message, outcome: Outcome, now_s: float, times: QueueTimes, bases: dict[Wait, int]
) -> int | None:
    wait = outcome.wait
    if wait is None:
        return None
    if wait is Wait.CLAIMED_ELSEWHERE:
        if outcome.until_ms is None:
            return None
        return max(1, int(outcome.until_ms / 1000 - now_s) + CLAIM_MARGIN_S)
    if wait is Wait.NO_SLOT_YET:  # until its ticket comes up on the rate limit's timeline
        return None if outcome.until_ms is None else max(1, math.ceil(outcome.until_ms / 1000 - now_s))
    base = bases.get(wait, 0)
    if base <= 0:
        return None
    return max(backoff_hold_s(base, message.receive_count), _cover_floor_s(message, now_s, times, base))
