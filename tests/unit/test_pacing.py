"""The rate gate with a fake clock: slow into the window, never into a 429."""

import threading

from payments_drain.pacing import MARGIN_S, RateGate

HEADERS = {"X-HubSpot-RateLimit-Max": "10", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def answer(gate, remaining):
    gate.started()
    gate.finished({**HEADERS, "X-HubSpot-RateLimit-Remaining": str(remaining)})


def test_no_wait_while_the_window_has_room_beyond_the_reserve():
    gate = RateGate(10, containers=2, parallel_calls=2, clock=Clock())
    assert gate.delay() == 0  # before any answer: nothing known, send
    answer(gate, remaining=9)
    assert [gate.delay() for _ in range(5)] == [0] * 5  # 9 left, 4 kept for what may be in flight
    assert gate.delay() > 0


def test_a_full_window_waits_for_our_own_oldest_request_to_leave_it():
    clock = Clock()
    gate = RateGate(10, containers=1, parallel_calls=2, clock=clock)
    answer(gate, remaining=2)  # answered at t=100: the reserve is spent
    clock.now = 103.0
    assert abs(gate.delay() - (100.0 + 10.0 - 103.0 + MARGIN_S)) < 1e-9


def test_waiting_callers_book_different_slots():
    clock = Clock()
    gate = RateGate(10, containers=1, parallel_calls=2, clock=clock)
    answer(gate, remaining=2)
    clock.now = 101.0
    answer(gate, remaining=1)
    waits = [gate.delay() for _ in range(3)]
    assert waits[0] < waits[1] < waits[2]  # t=110, t=111, then a share of the window after those


def test_slots_come_back_as_our_requests_leave_the_window():
    clock = Clock()
    gate = RateGate(10, containers=1, parallel_calls=1, reserve=1, clock=clock)
    answer(gate, remaining=1)
    clock.now = 111.0  # our request left the window: its slot is free
    assert gate.delay() == 0


def test_a_booked_slot_is_not_handed_out_twice():
    clock = Clock()
    gate = RateGate(10, containers=1, parallel_calls=1, reserve=1, clock=clock)
    answer(gate, remaining=1)
    clock.now = 105.0
    assert gate.delay() > 0  # this caller takes the slot of our request when it leaves
    clock.now = 111.0
    assert gate.delay() > 0  # so the next one does not get it too


def test_a_429_pauses_every_caller_and_empties_the_credits():
    clock = Clock()
    gate = RateGate(10, clock=clock)
    answer(gate, remaining=8)
    gate.started()
    gate.finished(HEADERS, throttled_for_s=2.0)
    assert gate.delay() >= 2.0


def test_concurrent_callers_never_get_more_immediate_slots_than_credits():
    gate = RateGate(100, containers=1, parallel_calls=4, clock=Clock())
    answer(gate, remaining=24)  # 20 sends allowed now
    immediate = []
    lock = threading.Lock()

    def take():
        wait = gate.delay()
        with lock:
            immediate.append(wait == 0)

    threads = [threading.Thread(target=take) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(immediate) == 20
