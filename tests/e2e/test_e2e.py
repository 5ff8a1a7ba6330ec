"""The invariant (docs/how-it-works.md), end to end on the local stack, with the real handler."""

from __future__ import annotations

import threading
import time

import pytest

from local.stack import workload

from .conftest import end_state

pytestmark = pytest.mark.slow
EMPTY = {"visible": 0, "in_flight": 0, "delayed": 0}


def test_mixed_workload_reaches_the_exact_end_state(local_stack):
    stack = local_stack()
    items = workload.generate(300, invalid_share=0.05, seed=7)
    enq = stack.enqueue(items)
    result = stack.drain(timeout=50)
    assert result.empty, result.stats

    state = end_state(stack, enq)
    valid = {it.payment_key for it in items if it.valid}
    invalid_ids = {mid for mid, it in enq.by_message_id.items() if not it.valid}
    assert len(invalid_ids) == 15
    # every valid payment created exactly once, nothing else created
    assert set(state["created"]) == valid
    assert set(state["created"].values()) == {1}
    # every invalid payment reported exactly once, with its reason and its payment
    assert set(state["reports"]) == invalid_ids
    for mid, reports in state["reports"].items():
        assert len(reports) == 1
        report = reports[0]
        item = enq.by_message_id[mid]
        assert report["paymentKey"] == (item.payment_key or mid)
        assert report["reason"]["category"] and report["reason"]["message"]
        assert report["payment"] is not None and report["receiveCount"] >= 1 and report["reportedAt"]
    assert state["queue"] == EMPTY and state["dlq"] == EMPTY


def test_sandbox_outage_delays_but_loses_and_duplicates_nothing(local_stack):
    stack = local_stack({"BatchSize": "50"}, sandbox_faults={})
    items = workload.generate(250, invalid_share=0.0, seed=11)
    enq = stack.enqueue(items)
    control = stack.sandbox.control

    def outage():
        deadline = time.monotonic() + 30
        while len(control.payments()) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        control.set_faults(outage=True)
        time.sleep(4)
        control.set_faults(outage=False)

    t = threading.Thread(target=outage)
    t.start()
    result = stack.drain(timeout=55)
    t.join()
    assert result.empty, result.stats

    state = end_state(stack, enq)
    assert set(state["created"]) == {it.payment_key for it in items}
    assert set(state["created"].values()) == {1}
    assert not state["reports"]
    assert state["queue"] == EMPTY and state["dlq"] == EMPTY
    stats = control.stats()
    assert stats["faults_injected"].get("outage", 0) > 0  # the outage really hit requests
    assert any(n > 1 for b in stack.batches for n in b["receiveCounts"])  # ... and delayed payments
    assert stats["trace_ids_stored_more_than_once"] == 0


def test_token_without_scope_sends_everything_to_the_dlq(local_stack):
    stack = local_stack(
        {"MaxReceiveCount": "2", "QueueVisibilityTimeoutSeconds": "3"},
        sandbox_config={"tokens": {"no-scope-token": {"scopes": []}}},
        token="no-scope-token",
    )
    items = workload.generate(30, invalid_share=0.0, seed=3)
    enq = stack.enqueue(items)
    result = stack.drain(timeout=45)
    assert result.empty, result.stats

    assert stack.sandbox.control.payments() == []
    assert stack.failure_reports() == []
    dead = stack.dead_letters()
    assert {m["MessageId"] for m in dead} == set(enq.message_ids)
    assert all(int(m["Attributes"]["ApproximateReceiveCount"]) >= 2 for m in dead)
    invocations_per_message = {}
    for b in stack.batches:
        for mid in b["messageIds"]:
            invocations_per_message[mid] = invocations_per_message.get(mid, 0) + 1
    assert set(invocations_per_message.values()) == {2}  # exactly maxReceiveCount receives each
    assert stack.queue_counts() == EMPTY
    assert stack.sandbox.control.stats()["requests_by_status"].get("403", 0) > 0
