"""Faults of time and shape: trickling and hanging answers, 2xx answers with errors[], unreadable
2xx bodies and daily-limit spells; each observed over HTTP by a plain client."""

from __future__ import annotations

import json
import time

import pytest
from sandbox_http import LIST, batch, payment

from local.hubspot_sandbox import SandboxControlError

UPSERT = "/crm/v3/objects/commerce_payments/batch/upsert"


def test_trickle_stores_then_sends_the_answer_a_piece_at_a_time(api, control):
    """A read timeout longer than the pause between pieces never trips: the answer just takes long."""
    control.set_faults(p_trickle=1.0, trickle_bytes=50, trickle_interval_s=0.05)
    started = time.monotonic()
    reply = api.create(batch(2), timeout=0.5)
    elapsed = time.monotonic() - started
    assert reply.status == 201 and len(reply.json["results"]) == 2
    pieces = (len(reply.raw) + 300) // 50  # body plus about 300 bytes of status line and headers
    assert elapsed >= 0.05 * (pieces - 1) > 0.5  # longer than the client's read timeout
    assert len(control.payments()) == 2
    assert control.stats()["faults_injected"] == {"trickle": 1}


def test_hang_never_answers_stores_nothing_and_lets_go_when_the_client_closes(api, control):
    control.set_faults(p_hang=1.0)
    with pytest.raises(TimeoutError):
        api.create(batch(2), timeout=0.5)
    assert control.payments() == []
    assert control.stats()["requests_by_status"] == {"hang": 1}
    control.clear_faults()
    assert api.create(batch(1)).status == 201


def test_hang_ends_after_hang_max_s(api, control):
    control.set_faults(p_hang=1.0, hang_max_s=0.3)
    connection = api.connection(timeout=5)
    try:
        connection.request(
            "POST",
            "/crm/v3/objects/commerce_payments/batch/create",
            body=json.dumps({"inputs": batch(1)}),
            headers=api.headers(),
        )
        started = time.monotonic()
        with pytest.raises(ConnectionError):  # closed without an answer
            connection.getresponse()
        assert time.monotonic() - started < 4
    finally:
        connection.close()


def test_2xx_with_errors_answers_a_multi_status_create_as_201_with_its_errors(api, control):
    control.set_faults(p_2xx_with_errors=1.0)
    inputs = [payment(), payment(hs_latest_status="paid"), payment()]
    reply = api.create(inputs)
    assert reply.status == 201
    body = reply.json
    assert body["numErrors"] == 1 and len(body["errors"]) == 1 and len(body["results"]) == 2
    assert body["errors"][0]["context"]["objectWriteTraceId"] == [inputs[1]["objectWriteTraceId"]]
    assert len(control.payments()) == 2
    assert api.create(batch(2)).status == 201  # nothing failed: a plain 201


def test_2xx_with_errors_answers_a_multi_status_upsert_as_200(api, control):
    control.set_config(unique_property="payment_key")
    control.set_faults(p_2xx_with_errors=1.0)
    good = {
        "id": "k1",
        "idProperty": "payment_key",
        "objectWriteTraceId": "t-a",
        "properties": {"hs_initial_amount": "1.00", "hs_initiated_date": "2026-11-27T10:00:00Z"},
    }
    bad = {"id": "k2", "idProperty": "payment_key", "objectWriteTraceId": "t-b", "properties": {}}
    reply = api.request("POST", UPSERT, {"inputs": [good, bad]})
    assert reply.status == 200 and reply.json["numErrors"] == 1


def test_stored_then_unreadable_stores_and_answers_2xx_with_a_body_that_is_not_json(api, control):
    control.set_faults(p_stored_then_unreadable=1.0)
    reply = api.create(batch(3))
    assert reply.status == 201
    assert reply.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        json.loads(reply.raw)
    assert len(control.payments()) == 3


def test_a_daily_spell_answers_429_daily_to_every_request_until_it_ends(api, control):
    control.set_faults(script=["daily_spell"], daily_spell_s=3.0)
    first = api.create(batch(1))
    during = [api.create(batch(1)), api.get(LIST)]
    for reply in [first, *during]:
        assert reply.status == 429
        assert reply.json["policyName"] == "DAILY" and reply.json["errorType"] == "RATE_LIMIT"
        assert reply.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    assert control.payments() == []
    assert control.stats()["rate_limited"] == {"DAILY": 3}
    time.sleep(3.1)
    after = api.create(batch(1))
    assert after.status == 201 and after.headers["X-HubSpot-RateLimit-Daily-Remaining"] != "0"


def test_a_reset_ends_a_daily_spell(api, control):
    control.set_faults(p_daily_spell=1.0, daily_spell_s=600)
    assert api.create(batch(1)).status == 429
    control.set_faults(p_daily_spell=0.0)
    assert api.create(batch(1)).status == 429  # the spell goes on
    control.reset()
    assert api.create(batch(1)).status == 201


@pytest.mark.parametrize(
    "option",
    [
        {"trickle_bytes": 0},
        {"trickle_interval_s": -1},
        {"hang_max_s": -1},
        {"daily_spell_s": -1},
        {"p_hang": 2},
        {"script": ["trickle", "slow"]},
    ],
)
def test_bad_timing_fault_options_are_refused(control, option):
    with pytest.raises(SandboxControlError, match="400"):
        control.set_faults(**option)
