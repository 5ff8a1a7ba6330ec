"""Containers killed with SIGKILL mid-batch, on the local stack with the real handler and ledger."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time

import pytest

from local.stack import workload

from .conftest import end_state

pytestmark = pytest.mark.slow
EMPTY = {"visible": 0, "in_flight": 0, "delayed": 0}


def test_a_container_killed_with_a_chunk_in_flight_never_resends_the_chunks_already_answered(local_stack):
    # One call at a time, each answered after 2 s: a batch of 300 is chunk 1, chunk 2, chunk 3. No
    # unique property: the ledger alone claims and records each chunk (with the template's default
    # property, HubSpot would refuse the resent chunks itself and this would prove nothing of it).
    # 20 s: after a 2 s answer a call is started only with connect timeout + 2 s left, so with the
    # suite's 10 s an invocation slowed by its claims gave up after chunk 1 and was idle at the kill.
    stack = local_stack(
        {
            "BatchSize": "300",
            "MaximumConcurrency": "2",
            "HubSpotUniqueProperty": "",
            "FunctionTimeoutSeconds": "20",
        },
        sandbox_faults={"latency_ms": 2000},
    )
    stack.function = dataclasses.replace(
        stack.function, environment={**stack.function.environment, "HUBSPOT_MAX_PARALLEL_CALLS": "1"}
    )
    items = workload.generate(600, invalid_share=0.0, seed=5)
    enq = stack.enqueue(items)
    control = stack.sandbox.control
    stored_before_kill: set[str] = set()
    killed: list[int] = []

    def kill_when_a_chunk_is_answered_and_the_next_in_flight():
        deadline = time.monotonic() + 40
        while len(control.payments()) < 100 and time.monotonic() < deadline:
            time.sleep(0.02)
        # Chunk 1 answered; the kill waits for chunk 2's request to reach the sandbox (counted on
        # arrival, answered 2 s later): a fixed pause let the kill land between invocations under
        # load, with nothing in flight.
        creates = control.stats()["requests_by_route"].get("create", 0)
        while (
            control.stats()["requests_by_route"].get("create", 0) <= creates and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        time.sleep(0.5)  # chunk 1 recorded in the ledger by now; chunk 2 is 1.5 s from its answer
        stored_before_kill.update(p["objectWriteTraceId"] for p in control.payments())
        for pid in stack.esm_instance.pool.pids():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    killer = threading.Thread(target=kill_when_a_chunk_is_answered_and_the_next_in_flight)
    killer.start()
    result = stack.drain(timeout=90)
    killer.join()
    assert killed and result.empty, result.stats
    assert any(b.get("error") for b in stack.batches)  # an invocation really died

    state = end_state(stack, enq)
    assert set(state["created"]) == {it.payment_key for it in items}  # nothing lost
    answered_first = {enq.by_message_id[m].payment_key for m in stored_before_kill}
    assert len(answered_first) >= 100
    assert {
        k: state["created"][k] for k in answered_first if state["created"][k] > 1
    } == {}  # none of them twice
    # What was in flight may have been stored twice (no unique property here): each copy is counted.
    extra = sum(n - 1 for n in state["created"].values())
    assert extra <= stack.sink.metrics().get("AmbiguousCreates", {}).get("sum", 0)
    assert state["queue"] == EMPTY and state["dlq"] == EMPTY
