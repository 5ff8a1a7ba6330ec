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


def linked(key: str, version: int, status: str, *contacts: str) -> workload.WorkItem:
    item = update(key, version, status)
    body = json.loads(item.body)
    body["associations"] = [
        {"to": {"id": c}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}]}
        for c in contacts
    ]
    return workload.WorkItem(json.dumps(body), "valid", key)


def test_upsert_links_each_payment_and_a_link_that_failed_after_its_record_is_written_later(local_stack):
    stack = local_stack({"HubSpotWriteMode": "upsert"})  # on the template's default API version
    assert stack.function.environment["HUBSPOT_API_VERSION"] == "2026-09"
    # the first call (the upsert) is answered, the link calls after it fail while the drain tries
    stack.sandbox.control.set_faults(script=["ok", "503", "503", "503"])
    stack.enqueue([linked("pay-1", 1, "processing", "501")])
    assert stack.drain(timeout=40).empty
    stack.enqueue([linked(k, 1, "processing", "502") for k in ("pay-2", "pay-3")])
    assert stack.drain(timeout=40).empty
    stack.enqueue([linked("pay-2", 2, "refunded", "502", "503")])  # an update that adds a link
    assert stack.drain(timeout=40).empty

    stored = {p["properties"][KEY]: p for p in stack.sandbox.control.payments()}
    assert set(stored) == {"pay-1", "pay-2", "pay-3"}  # one record each: the retry only linked
    assert {k: sorted(a["to"]["id"] for a in p["associations"]) for k, p in stored.items()} == {
        "pay-1": ["501"],
        "pay-2": ["502", "503"],
        "pay-3": ["502"],
    }
    assert stored["pay-2"]["properties"]["hs_latest_status"] == "refunded"
    stats = stack.sandbox.control.stats()
    assert stats["requests_by_route"]["upsert"] == 3 and stats["requests_by_status"]["503"] == 3
    assert stats["payments_updated"] == 1  # pay-1's retry wrote its link alone, no upsert
    assert stack.sink.metrics()["PaymentLinksWritten"]["sum"] == 5
    assert stack.failure_reports() == []
    assert stack.queue_counts() == EMPTY and stack.queue_counts(stack.dlq_url) == EMPTY
