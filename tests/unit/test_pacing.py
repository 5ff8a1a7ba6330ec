"""The rate gate with a fake clock: fill the window, never into a 429 of our own making."""

import heapq
import itertools
import random
import threading
from collections import deque

import pytest
from payments_drain.adapters.rate_slots import TICKET_LEAD_MS, DynamoRateSlots
from payments_drain.core.slot_log import CLOCK_MS, ROUND_MAX_MS, ROUND_MS, round_for
from payments_drain.orchestration.pacing import BUSY_S, MARGIN_S, DailyLimit, RateGate, SlotGate

from simulation.dynamodb import DynamoFaults, SimDynamoDB, create_hash_table

HEADERS = {"X-HubSpot-RateLimit-Max": "20", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def answer(gate, remaining=None):
    assert gate.delay() == 0
    gate.started()
    headers = dict(HEADERS)
    if remaining is not None:
        headers["X-HubSpot-RateLimit-Remaining"] = str(remaining)
    gate.finished(headers)


def test_before_any_answer_the_container_sends_its_parallel_calls_then_waits():
    gate = RateGate(20, parallel_calls=4, clock=Clock())
    assert [gate.delay() for _ in range(4)] == [0] * 4
    assert gate.delay() > 0


def test_the_first_burst_never_exceeds_a_small_limit():
    gate = RateGate(3, parallel_calls=4, clock=Clock())  # 4 would be more than the limit
    assert [gate.delay() for _ in range(3)] == [0] * 3 and gate.delay() > 0


def test_an_answer_grows_the_allowance_into_the_room_it_reports():
    gate = RateGate(20, parallel_calls=4, clock=Clock())
    answer(gate, remaining=19)  # room for min(4, 19) outstanding
    assert [gate.delay() for _ in range(4)] == [0] * 4 and gate.delay() > 0  # 1 answered + 4


def test_without_room_the_allowance_does_not_grow():
    gate = RateGate(20, parallel_calls=4, clock=Clock())
    for _ in range(4):
        answer(gate, remaining=0)
    assert gate.delay() > 0  # 4 answered and in the window: the first burst's allowance


def test_a_full_allowance_waits_for_our_own_oldest_request_to_leave_the_window():
    clock = Clock()
    gate = RateGate(20, parallel_calls=1, clock=clock)
    answer(gate, remaining=0)  # answered at t=100, no room
    clock.now = 103.0
    assert abs(gate.delay() - (100.0 + 10.0 - 103.0 + MARGIN_S)) < 1e-9
    clock.now = 110.0  # it left the window: its slot is ours again
    assert gate.delay() == 0


def test_concurrent_callers_never_get_more_immediate_slots_than_the_allowance():
    gate = RateGate(200, parallel_calls=50, clock=Clock())
    answer(gate, remaining=199)  # allowance: 1 answered + 50 outstanding
    immediate = []
    lock = threading.Lock()

    def take():
        wait = gate.delay()
        with lock:
            immediate.append(wait == 0)

    threads = [threading.Thread(target=take) for _ in range(80)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(immediate) == 50


def test_a_429_pauses_every_caller_and_shrinks_the_allowance_to_what_is_out():
    clock = Clock()
    gate = RateGate(20, clock=clock)
    answer(gate, remaining=15)
    assert gate.delay() == 0
    gate.started()
    gate.finished(HEADERS, throttled_for_s=2.0)
    assert gate.delay() >= 2.0
    clock.now += 2.0
    assert gate.delay() > 5.0  # one answered in the window: that is all we may have now


def test_an_answer_without_headers_counts_as_one_fewer_than_the_last_heard():
    gate = RateGate(20, parallel_calls=2, clock=Clock())
    answer(gate, remaining=1)  # allowance 1 + min(2, 1)
    answer(gate)  # a 5xx without headers: 0 left (not the 19 of the limit): no growth
    assert gate.delay() > 0


def test_outstanding_stays_within_parallel_calls_also_between_our_calls():
    """Requests that leave the window while the container is busy elsewhere shrink its allowance
    as of the moment they left, not when it next looks."""
    clock = Clock()
    gate = RateGate(100, parallel_calls=2, clock=clock)
    for _ in range(6):  # grows to 8: six answered at t=100 and two outstanding
        answer(gate, remaining=90)
    clock.now = 104.0
    answer(gate, remaining=90)  # seven answered, allowance 9
    assert gate.delay() == 0
    gate.started()  # in flight from t=104 ...
    clock.now = 110.5  # ... the six of t=100 left at t=110 (one answered + two outstanding then)
    gate.finished({**HEADERS, "X-HubSpot-RateLimit-Remaining": "0"})  # ... answered at t=110.5
    assert gate.delay() == 0 and gate.delay() > 0  # 2 answered, allowance 3: one more, not two


class Simulation:
    """Events in time order on a fake clock, and one rolling 10 s window that refuses beyond
    ``limit``; a call is counted when answered (like the sandbox)."""

    def __init__(self, limit: int, seed: int) -> None:
        self.limit = limit
        self.rng = random.Random(seed)
        self.clock = Clock()
        self.clock.now = 0.0
        self.events: list = []
        self.order = itertools.count()
        self.window: deque[float] = deque()
        self.refused = 0

    def at(self, when, action) -> None:
        heapq.heappush(self.events, (when, next(self.order), action))

    def call(self, answered) -> None:
        """A call of 100-200 ms: ``answered(ok)`` when it is answered."""
        self.at(self.clock.now + self.rng.uniform(0.1, 0.2), lambda: answered(self.admit()))

    def admit(self) -> bool:
        while self.window and self.window[0] <= self.clock.now - 10.0:
            self.window.popleft()
        ok = len(self.window) < self.limit
        if ok:
            self.window.append(self.clock.now)
        else:
            self.refused += 1
        return ok

    def run(self) -> float:
        """Until nothing is left to do; when the last thing happened."""
        last = 0.0
        while self.events:
            self.clock.now, _, action = heapq.heappop(self.events)
            last = self.clock.now
            action()
        return last


def alone_in_the_window(parallel: int, limit: int, requests: int, seed: int):
    """One container's parallel callers pacing by the headers through the window. Returns how
    many were refused and when the last request was answered."""
    sim = Simulation(limit, seed)
    left = [requests]
    gate = RateGate(limit, parallel_calls=parallel, clock=sim.clock)

    def ask(gate):
        if left[0] <= 0:
            return
        wait = gate.delay()
        if wait:
            sim.at(sim.clock.now + wait, lambda: ask(gate))
            return
        left[0] -= 1
        gate.started()
        sim.call(lambda ok: answered(gate, ok))

    def answered(gate, ok):
        headers = {**HEADERS, "X-HubSpot-RateLimit-Max": str(limit)}
        headers["X-HubSpot-RateLimit-Remaining"] = str(limit - len(sim.window))
        gate.finished(headers, 0.0 if ok else 1.0)
        if not ok:
            left[0] += 1
        ask(gate)

    for _ in range(parallel):
        sim.at(0.0, lambda: ask(gate))
    last = sim.run()
    return sim.refused, last


@pytest.mark.parametrize("seed", range(5))
def test_a_container_pacing_by_the_headers_never_runs_into_a_429(seed):
    refused, last = alone_in_the_window(4, 20, 100, seed)
    assert refused == 0 and last < 65.0  # and it drains


class SimClock:
    """The clock SimDynamoDB reads (no latency is configured, so it never sleeps)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def wall(self) -> float:
        return self.clock.now

    def sleep(self, seconds: float) -> None:
        raise AssertionError("no latency configured")


def timeline(clock: Clock, limit: int, faults: DynamoFaults | None = None, parallel: int = 1):
    """A slots table in SimDynamoDB (held to DynamoDB Local by tests/contract), and a factory of
    DynamoRateSlots on it: one per container."""
    ddb = SimDynamoDB(SimClock(clock), random.Random(0), faults)
    create_hash_table(ddb, "slots", "name")
    return ddb, lambda: DynamoRateSlots("slots", limit, client=ddb, parallel=parallel)


def slot_gate(slots, clock, seed=0):
    return SlotGate(slots, wall_ms=lambda: round(clock.now * 1000), rng=random.Random(seed))


def shared_slots(limit: int, requests: int, starts, seed: int, batch: int = 10, parallel: int = 4):
    """Containers sharing one slots table and one window, each taking batches of ``batch`` calls
    (begin, ``parallel`` callers, end when all are answered). Returns (refused, last answer, ddb)."""
    sim = Simulation(limit, seed)
    ddb, new_slots = timeline(sim.clock, limit, parallel=parallel)
    left = [requests]

    class Container:
        def __init__(self, index):
            self.gate = slot_gate(new_slots(), sim.clock, seed * 100 + index)
            self.unsent = self.unanswered = 0

        def next_batch(self):
            n = min(batch, left[0])
            if n == 0:
                return
            left[0] -= n
            self.unsent = self.unanswered = n
            self.gate.begin(int((sim.clock.now + 60) * 1000), n)
            for _ in range(parallel):
                self.ask()

        def ask(self):
            if self.unsent == 0:
                return
            wait = self.gate.delay()
            if wait:
                sim.at(sim.clock.now + wait, self.ask)
                return
            self.unsent -= 1
            self.gate.started()
            sim.call(self.answered)

        def answered(self, ok):
            self.gate.finished(
                {**HEADERS, "X-HubSpot-RateLimit-Max": str(limit)}, 0.0 if ok else 1.0, answered=True
            )
            if ok:
                self.unanswered -= 1
            else:
                self.unsent += 1
            if self.unanswered == 0:
                self.gate.end()
                sim.at(sim.clock.now + 0.02, self.next_batch)  # the next batch from the queue
            else:
                self.ask()

    for index, start in enumerate(starts):
        sim.at(start, Container(index).next_batch)
    last = sim.run()
    return sim.refused, last, ddb


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("starts", [(0.0, 0.0, 0.0), (0.0, 0.0), (0.0, 1.3, 2.9)])
def test_containers_sharing_the_timeline_fill_it_and_never_run_into_a_429(seed, starts):
    refused, last, ddb = shared_slots(20, 100, starts, seed)
    gap_s = DynamoRateSlots("slots", 20, client=ddb).gap_ms / 1000  # a window and the margin
    # 100 requests are 5 windows of 20: the fifth starts 4 gaps after the first (staggered starts
    # add their 2.9 s); one slot left unused anywhere would put the last a whole gap later
    assert refused == 0 and last < 4 * gap_s + max(starts) + 1.5
    # a write per batch of 10, and one more when another container moved the timeline since the
    # container last saw it: not a write per request
    assert ddb.calls["UpdateItem"] <= 2 * 100 / 10 + len(starts)


@pytest.mark.parametrize("seed", range(5))
def test_a_batch_of_ten_calls_on_four_callers_waits_for_no_round_its_calls_do_not_need(seed):
    """One container, 10 batches of 10 calls of 100-200 ms on 4 callers, the limit far off (figure
    c's default shape): each batch is three rounds of calls, and a caller answered early starts the
    next round at once instead of waiting for a slot a fixed round later (rounds of 200 ms: 5.6-5.8
    s); no slot passes unused, so a batch costs one write (the container's first one write more:
    its first claim takes one round of slots, until its calls say how long a round is)."""
    refused, last, ddb = shared_slots(190, 100, (0.0,), seed)
    assert refused == 0 and last < 10 * (3 * 0.15 + 0.08)  # 4.7-4.9 s; the batches are 20 ms apart
    assert ddb.calls["UpdateItem"] == 10 + 1


def test_a_claim_plans_its_slots_from_after_a_slow_first_read():
    """A container's first claim reads the item, then writes: slots planned from before a read
    that took longer than a slot may be late would pass before the claim returns."""

    class SlowRead:
        def __init__(self, ddb, clock):
            self.ddb, self.clock = ddb, clock

        def get_item(self, **params):
            self.clock.now += 0.3  # longer than SLACK_MS
            return self.ddb.get_item(**params)

        def __getattr__(self, name):
            return getattr(self.ddb, name)

    clock = Clock()
    ddb, _ = timeline(clock, 20)
    gate = slot_gate(DynamoRateSlots("slots", 20, client=SlowRead(ddb, clock), parallel=4), clock)
    gate.begin(200_000, 4)
    assert gate.delay() == 0  # a slot at once, not a claim again
    assert list(gate.starts) == [100_300] * 3 and ddb.calls["UpdateItem"] == 1


def test_a_slot_not_started_in_time_passes_and_holds_nothing():
    clock = Clock()
    _, new_slots = timeline(clock, 20)
    gate = slot_gate(new_slots(), clock)
    gate.begin(200_000, 2)
    assert gate.delay() == 0  # the first slot is now
    gate.started()
    clock.now += 5.0  # the second slot (a round, ROUND_MS, later) was never taken
    wait = gate.delay()  # so it passed, and the next claim starts now, not at the old slot
    assert wait == 0


def test_a_429_pauses_every_caller_and_the_slots_passing_meanwhile_are_not_kept():
    clock = Clock()
    _, new_slots = timeline(clock, 20)
    gate = slot_gate(new_slots(), clock)
    gate.begin(200_000, 5)
    assert gate.delay() == 0  # the first claim, one slot: the gate does not know its calls yet
    gate.started()
    gate.finished(HEADERS, answered=True)  # answered at once: rounds of ROUND_MS
    assert gate.delay() == 0
    gate.started()
    gate.finished(HEADERS, throttled_for_s=2.0)
    assert gate.delay() == pytest.approx(2.0)
    clock.now += 2.0
    # the three other slots claimed (a round, ROUND_MS, apart) passed in the pause: new ones from now
    assert gate.delay() == 0 and list(gate.starts) == [102_000 + ROUND_MS, 102_000 + 2 * ROUND_MS]


@pytest.mark.parametrize("answered", [True, False])
def test_an_answered_slot_binds_a_window_after_its_answer_not_a_window_and_margin_after_the_slot(answered):
    """The window counts a request no later than its answer: once the answer is in, the slot's
    next claim writes it down, and the slot binds until a window (and the clocks' margin) after
    the answer. Without an answer (a timeout: when was it counted?) it binds its full time."""
    clock = Clock()  # 100 s: both slots at 100_000
    _, new_slots = timeline(clock, 2, parallel=2)
    gate = slot_gate(new_slots(), clock)
    gate.begin(200_000, 2)
    for took_s in (0.15, 0.1):  # answered at 100_150 and 100_250
        assert gate.delay() == 0
        gate.started()
        clock.now += took_s
        gate.finished(HEADERS, answered=answered)
    gate.end()
    clock.now = 101.0
    gate.begin(200_000, 1)
    assert gate.delay() > 0  # the window is full: the next slot is a window away
    first = 100_150 + CLOCK_MS + 10_000 if answered else 100_000 + new_slots().gap_ms
    assert list(gate.starts) == [first]  # 110_200 on the grid, not 110_400


def test_a_slot_no_call_used_is_taken_out_of_the_log_by_the_next_claim():
    clock = Clock()
    _, new_slots = timeline(clock, 2, parallel=2)
    gate, other = slot_gate(new_slots(), clock), slot_gate(new_slots(), clock, 1)
    gate.begin(200_000, 2)
    assert gate.delay() == 0  # both slots claimed, one taken...
    gate.cancel()  # ... and given up before its call started
    gate.end()  # the other passes unused
    clock.now = 101.0
    gate.begin(200_000, 1)
    assert gate.delay() == 0  # the log is free again: a slot now, not a window and margin later
    other.begin(200_000, 1)
    assert other.delay() == 0 and gate.starts == other.starts == deque()


def test_a_claim_that_cannot_fit_before_the_calls_end_takes_a_ticket_in_line():
    clock = Clock()
    _, new_slots = timeline(clock, 20)
    first, second, third = (slot_gate(new_slots(), clock, i) for i in range(3))
    for gate in (first, second, third):
        gate.call_ms = 150  # warm containers: they know how long their calls take (else one round first)
    now_ms = round(clock.now * 1000)
    first.begin(now_ms + 20_000, 100)  # 18 s of calls: two windows of 20 slots fit
    assert first.delay() == 0 and len(first.starts) == 39
    second.begin(now_ms + 20_000, 10)
    assert second.delay() > 0  # nothing left before its calls end
    ticket = second.no_slot_until_ms()
    third.begin(now_ms + 20_000, 10)
    third.delay()
    # in line: the second's 10 slots from the third window, back 5 s early; the third's after
    # them at the sustained rate (20 per window and margin)
    slots = new_slots()
    assert ticket == now_ms + 2 * slots.gap_ms - TICKET_LEAD_MS
    assert third.no_slot_until_ms() == ticket + 10 * slots.spacing_ms


def test_a_throttled_claim_is_no_slot_yet_with_a_jittered_retry_never_an_outage():
    clock = Clock()
    _, new_slots = timeline(clock, 20, DynamoFaults(p_throttle_request=1.0))
    gates = [slot_gate(new_slots(), clock, seed) for seed in range(5)]
    retries = set()
    for gate in gates:
        gate.begin(200_000, 2)
        wait = gate.delay()  # no RateSlotsUnavailable
        assert 0 < wait <= BUSY_S[1] + 0.01
        retries.add(gate.no_slot_until_ms())
    assert len(retries) == 5  # not all on the same millisecond


def test_a_daily_limit_probe_answered_by_a_timeout_or_5xx_has_not_probed():
    now = [0.0]
    daily = DailyLimit(300, clock=lambda: now[0])
    assert daily.observe(429, {"policyName": "DAILY"}, {}) is True
    now[0] = 301.0
    assert daily.may_call()  # the probe
    daily.observe(None, None, {})  # it timed out: nothing learned about the day
    assert daily.may_call()  # so the next call probes again, not in 300 s
    daily.observe(503, None, {})
    assert daily.may_call()
    daily.observe(429, {"policyName": "DAILY"}, {})  # still spent: the next probe in 300 s
    assert not daily.may_call()


def test_a_call_in_a_slot_pauses_every_caller_for_a_429s_retry_after_and_an_error_ends_its_slot():
    """One rule for every HubSpot call in a rate slot (``call_in_slot``: the attempts' writes and the
    read-back): a 429 pauses the gate for its Retry-After, and a call that raised ends its slot
    without an answer. The read-back paused 1 s whatever the Retry-After said."""
    from payments_drain.core.batching import Answer
    from payments_drain.orchestration.pacing import call_in_slot

    clock = Clock()
    _, new_slots = timeline(clock, 20)
    gate = slot_gate(new_slots(), clock)
    gate.begin(200_000, 4)
    daily = DailyLimit(clock=clock)
    assert gate.delay() == 0
    answer, spent = call_in_slot(gate, daily, lambda: Answer(429, {}, {**HEADERS, "Retry-After": "3"}))
    assert answer.status == 429 and not spent
    assert gate.delay() == pytest.approx(3.0)
    clock.now += 3.0
    assert gate.delay() == 0
    with pytest.raises(TimeoutError):
        call_in_slot(gate, daily, lambda: (_ for _ in ()).throw(TimeoutError()))
    assert gate.taken == {}  # the slot is over (unanswered: it binds its full time)


def test_a_gate_claims_one_round_until_it_knows_its_calls_then_rounds_as_long_as_they_take():
    """Calls of 450 ms with rounds of 150 ms let every later slot of the claim pass unused (slots
    others then planned around: figure h's model, calls of 300-600 ms, 1.22x the bound). The
    gate's first claim takes one round of slots; once its calls are answered it claims the rest
    with rounds as long as they took."""
    clock = Clock()
    clock.now = 0.0
    _, new_slots = timeline(clock, 190, parallel=2)
    slots = new_slots()
    claims, claim = [], slots.claim

    def recording(want, *args, **kwargs):
        claims.append((want, kwargs.get("round_ms")))
        return claim(want, *args, **kwargs)

    slots.claim = recording
    me = ["a"]
    gate = SlotGate(slots, wall_ms=lambda: round(clock.now * 1000), caller=lambda: me[0])
    gate.begin(60_000, 6)
    for caller in "ab":
        me[0] = caller
        assert gate.delay() == 0
        gate.started()
    clock.now = 0.45
    for caller in "ab":
        me[0] = caller
        gate.finished({}, answered=True)
    while (wait := gate.delay()) > 0:
        clock.now += wait
    assert claims == [(2, ROUND_MS), (4, 450)]
    assert list(gate.starts) == [450, 900, 900]  # the other caller's slot now; the next round a call later


@pytest.mark.parametrize(
    ("call_ms", "round_ms"),
    [(0, ROUND_MS), (120, ROUND_MS), (174, ROUND_MS), (176, 200), (430, 450), (9_000, ROUND_MAX_MS)],
)
def test_a_round_is_as_long_as_the_calls_on_the_grid_within_its_bounds(call_ms, round_ms):
    assert round_for(call_ms) == round_ms
