"""End-to-end fixtures: the whole local stack (moto, sandbox, ESM emulator, the real handler)."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from local.stack import LocalStack

# Short timeouts so that redelivery happens within a test; everything else is template.yaml's.
FAST = {
    "BatchSize": "100",
    "BatchingWindowSeconds": "1",
    "QueueVisibilityTimeoutSeconds": "12",
    "FunctionTimeoutSeconds": "10",
    "HubSpotUnavailableHoldSeconds": "2",
    "DailyLimitHoldSeconds": "3",
}


@pytest.fixture
def local_stack():
    stacks: list[LocalStack] = []

    def make(parameters: dict | None = None, **kwargs) -> LocalStack:
        stack = LocalStack(parameters={**FAST, **(parameters or {})}, **kwargs)
        stacks.append(stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.stop()


def end_state(stack: LocalStack, enq) -> dict:
    """The drain's end state, keyed by paymentKey (message id when the body had none)."""
    created = Counter()
    for p in stack.sandbox.control.payments():
        item = enq.by_message_id.get(p.get("objectWriteTraceId"))
        created[item.payment_key if item and item.payment_key else p.get("objectWriteTraceId")] += 1
    reports = defaultdict(list)
    for r in stack.failure_reports():
        reports[r.get("messageId")].append(r)
    return {
        "created": created,
        "reports": reports,
        "queue": stack.queue_counts(),
        "dlq": stack.queue_counts(stack.dlq_url),
    }
