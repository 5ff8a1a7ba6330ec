"""Upsert mode end to end: payments change, updates are applied, an older version is refused."""

from __future__ import annotations

import json

import pytest

from local.stack import workload

pytestmark = pytest.mark.slow
EMPTY = {"visible": 0, "in_flight": 0, "delayed": 0}
KEY = "payments_drain_key"  # the template's default unique property, made in the sandbox as by setup


def update(key: str, version: int, status: str, refunds: str = "0") -> workload.WorkItem:
    body = {
        "paymentKey": key,
        "version": version,
        "properties": {
            "hs_initial_amount": "49.90",
            "hs_initiated_date": "2026-11-27T10:00:00Z",
            "hs_currency_code": "EUR",
            "hs_latest_status": status,
            "hs_refunds_amount": refunds,
        },
    }
    return workload.WorkItem(json.dumps(body), "valid", key)


def test_upsert_applies_a_payments_lifecycle_in_version_order_and_refuses_a_late_older_update(local_stack):
    stack = local_stack({"HubSpotWriteMode": "upsert"})
    keys = [f"pay-{i}" for i in range(30)]
    stack.enqueue([update(k, 1, "processing") for k in keys])
    assert stack.drain(timeout=40).empty
    stack.enqueue([update(k, 3, "refunded", "49.90") for k in keys])  # then: refunded
    assert stack.drain(timeout=40).empty
    stack.enqueue([update(k, 2, "succeeded") for k in keys[:10]])  # a late, older update
    assert stack.drain(timeout=40).empty

    stored = {p["properties"][KEY]: p for p in stack.sandbox.control.payments()}
    assert set(stored) == set(keys)  # one payment per key: the updates never made a copy
    assert {p["properties"]["hs_latest_status"] for p in stored.values()} == {"refunded"}
    assert {p["properties"]["hs_refunds_amount"] for p in stored.values()} == {"49.90"}
    metrics = stack.sink.metrics()
    assert metrics["PaymentsUpdated"]["sum"] == 30 and metrics["PaymentsStale"]["sum"] == 10
    assert stack.failure_reports() == []
    assert stack.queue_counts() == EMPTY and stack.queue_counts(stack.dlq_url) == EMPTY
