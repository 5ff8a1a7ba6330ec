"""The producers' channels end to end: payments the queue got from an SNS topic (without raw delivery)
and from an EventBridge rule, mixed in the same batches with payments sent directly (docs/messages.md,
"Through SNS or EventBridge"; the shapes are those of events/generate.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from local.stack import workload

from .conftest import end_state

pytestmark = pytest.mark.slow
EMPTY = {"visible": 0, "in_flight": 0, "delayed": 0}


def events_generator():
    path = Path(__file__).parents[2] / "events" / "generate.py"
    spec = importlib.util.spec_from_file_location("events_generate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EVENTS = events_generator()


def by_sns(payment: dict, kind: str = "valid") -> workload.WorkItem:
    """SNS's notification JSON, the payment the text in ``Message``."""
    key = payment["paymentKey"]
    return workload.WorkItem(EVENTS.sns_notification(json.dumps(payment), seed=key), kind, key)


def by_eventbridge(payment: dict, kind: str = "valid") -> workload.WorkItem:
    """EventBridge's event, the payment in ``detail``."""
    key = payment["paymentKey"]
    return workload.WorkItem(json.dumps(EVENTS.eventbridge_event(payment, seed=key)), kind, key)


def test_sns_and_eventbridge_wrapped_payments_mixed_with_direct_ones_are_all_created_once(local_stack):
    stack = local_stack({"BatchSize": "50"})
    direct = workload.generate(90, invalid_share=0.0, seed=31)
    items: list[workload.WorkItem] = []
    for n, item in enumerate(direct):  # a third each, interleaved: every batch mixes the channels
        payment = json.loads(item.body)
        items.append((item, by_sns(payment), by_eventbridge(payment))[n % 3])
    bad_sns = json.loads(direct[0].body) | {"paymentKey": "bad-by-sns"}
    bad_sns["properties"]["hs_currency_code"] = "EURO"
    bad_event = json.loads(direct[1].body) | {"paymentKey": "bad-by-eventbridge"}
    bad_event["properties"]["hs_latest_status"] = "paid"
    items[40:40] = [by_sns(bad_sns, "bad_currency"), by_eventbridge(bad_event, "bad_enum_option")]
    enq = stack.enqueue(items)
    result = stack.drain(timeout=50)
    assert result.empty, result.stats

    state = end_state(stack, enq)
    valid = [it for it in items if it.valid]
    assert {it.body.lstrip()[:12] for it in valid} == {'{"paymentKey', '{\n  "Type" :', '{"version": '}
    assert set(state["created"]) == {it.payment_key for it in valid}  # every payment, whatever its channel
    assert set(state["created"].values()) == {1}
    stored = {p["objectWriteTraceId"]: p for p in stack.sandbox.control.payments()}
    for mid, record in stored.items():  # what HubSpot got is the payment, not its wrapper
        sent = enq.by_message_id[mid]
        inner = json.loads(sent.body)
        inner = json.loads(inner["Message"]) if "Message" in inner else inner.get("detail", inner)
        assert record["properties"]["hs_initial_amount"] == inner["properties"]["hs_initial_amount"]
        assert "Message" not in record["properties"] and "detail" not in record["properties"]
    channels = [{enq.by_message_id[m].body.lstrip()[:5] for m in b["messageIds"]} for b in stack.batches]
    assert any(len(shapes) == 3 for shapes in channels)  # a batch with all three

    invalid = {mid: it for mid, it in enq.by_message_id.items() if not it.valid}
    assert set(state["reports"]) == set(invalid)
    for mid, (report,) in state["reports"].items():
        item = invalid[mid]
        assert report["paymentKey"] == item.payment_key  # the wrapped payment's key, not a message id
        assert report["payment"] == json.loads(item.body)  # the original body, wrapper and all
    codes = {invalid[mid].payment_key: reports[0]["reason"] for mid, reports in state["reports"].items()}
    assert codes["bad-by-sns"]["code"] == "INVALID_CURRENCY"
    assert codes["bad-by-sns"]["message"].startswith("Message.properties.hs_currency_code")
    assert codes["bad-by-eventbridge"]["code"] == "INVALID_OPTION"
    assert codes["bad-by-eventbridge"]["message"].startswith("detail.properties.hs_latest_status")
    assert state["queue"] == EMPTY and state["dlq"] == EMPTY
