"""Faults: each one observable by a client, switchable at run time, replayable with a seed."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest
from sandbox_http import LIST, Api, batch

from local.hubspot_sandbox import SandboxConfig, SandboxControlError

STATUS_FAULTS = ["429", "423", "477", "500", "502", "503", "504"]


def test_latency_delays_replies(api, control):
    control.set_faults(latency_ms=250)
    started = time.monotonic()
    assert api.create(batch(1)).status == 201
    assert time.monotonic() - started >= 0.25
    control.set_faults(latency_ms=0, latency_jitter_ms=300)
    durations = []
    for _ in range(6):
        started = time.monotonic()
        api.get(LIST)
        durations.append(time.monotonic() - started)
    assert max(durations) < 1.5
    assert max(durations) - min(durations) > 0.02  # jitter varies


@pytest.mark.parametrize("status", STATUS_FAULTS)
def test_each_status_fault_answers_that_status_and_stores_nothing(api, control, status):
    control.set_faults(**{f"p_{status}": 1.0, "retry_after_s": 3})
    reply = api.create(batch(2))
    assert reply.status == int(status)
    body = reply.json
    assert body["status"] == "error"
    assert body["correlationId"] == reply.headers["X-HubSpot-Correlation-Id"]
    if status == "477" or status == "423":
        assert reply.headers["Retry-After"] == "3"
    if status == "429":
        assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert control.payments() == []
    stats = control.stats()
    assert stats["faults_injected"] == {status: 1}
    assert stats["requests_by_status"] == {status: 1}
    assert stats["inputs_received"] == 2


def test_477_carries_retry_after(api, control):
    control.set_faults(p_477=1.0)
    reply = api.create(batch(1))
    assert reply.status == 477
    assert int(reply.headers["Retry-After"]) == 1


def test_connection_reset_before_replying_is_a_connection_error(api, control):
    control.set_faults(p_reset=1.0)
    with pytest.raises(ConnectionError):
        api.create(batch(3))
    assert control.payments() == []
    assert control.stats()["requests_by_status"] == {"reset": 1}


def test_connection_reset_after_store_stores_then_fails(api, control):
    control.set_faults(p_reset_after_store=1.0)
    with pytest.raises(ConnectionError):
        api.create(batch(3))
    assert len(control.payments()) == 3


def test_stored_then_timeout_stores_and_times_out_a_short_read_timeout(api, control):
    control.set_faults(p_stored_then_timeout=1.0, stored_then_timeout_delay_s=1.5)
    inputs = batch(4)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        api.create(inputs, timeout=0.4)
    assert time.monotonic() - started < 1.4
    stored = control.payments()
    assert {p["objectWriteTraceId"] for p in stored} == {i["objectWriteTraceId"] for i in inputs}


def test_stored_then_timeout_reply_does_arrive_for_a_patient_client(api, control):
    control.set_faults(p_stored_then_timeout=1.0, stored_then_timeout_delay_s=0.3)
    started = time.monotonic()
    reply = api.create(batch(2), timeout=5)
    assert reply.status == 201 and time.monotonic() - started >= 0.3


def test_stored_then_error_stores_and_answers_an_error(api, control):
    control.set_faults(p_stored_then_error=1.0, stored_then_error_status=504)
    reply = api.create(batch(2))
    assert reply.status == 504
    assert len(control.payments()) == 2


def test_truncated_body_fails_json_parsing(api, control):
    control.set_faults(p_truncated=1.0)
    reply = api.create(batch(3))
    assert reply.status == 201
    assert int(reply.headers["Content-Length"]) == len(reply.raw)
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.raw)
    assert len(control.payments()) == 3


def test_truncated_body_in_close_mode_is_an_incomplete_read(api, control):
    control.set_faults(p_truncated=1.0, truncate_mode="close")
    with pytest.raises(http.client.IncompleteRead):
        api.create(batch(3))
    assert len(control.payments()) == 3


def test_outage_takes_creates_down_and_brings_them_back(api, control):
    control.set_faults(outage=True)
    replies = [api.create(batch(1)) for _ in range(3)]
    assert [r.status for r in replies] == [503] * 3
    assert all(r.json["status"] == "error" for r in replies)
    assert api.get(LIST).status == 200  # only creates are down
    assert control.payments() == []
    control.set_faults(outage=False)
    assert api.create(batch(1)).status == 201
    assert control.stats()["faults_injected"]["outage"] == 3


def test_faults_apply_to_creates_only(api, control):
    control.set_faults(p_500=1.0)
    assert api.get(LIST).status == 200
    assert api.create(batch(1)).status == 500


def test_a_script_forces_the_next_outcomes_in_order(api, control):
    control.set_faults(script=["503", "ok", "477", "truncated"])
    assert api.create(batch(1)).status == 503
    assert api.create(batch(1)).status == 201
    assert api.create(batch(1)).status == 477
    truncated = api.create(batch(1))
    with pytest.raises(ValueError):
        json.loads(truncated.raw)
    assert api.create(batch(1)).status == 201
    assert control.faults()["script"] == []


def _statuses(api, n=40):
    out = []
    for _ in range(n):
        try:
            out.append(api.create(batch(1)).status)
        except ConnectionError:
            out.append("reset")
    return out


SEEDED = {"p_500": 0.2, "p_503": 0.2, "p_477": 0.1, "p_reset": 0.1}


def test_a_seed_makes_a_run_replayable(api, control, hubspot_sandbox_factory):
    control.set_config(seed=7, faults=SEEDED)
    first = _statuses(api)
    assert {201, 500, 503}.issubset(set(first))  # not degenerate
    control.reset()  # re-seeds
    assert _statuses(api) == first
    control.set_config(seed=8)
    assert _statuses(api) != first
    # a fresh process started with the same seed and faults replays the same sequence
    other = hubspot_sandbox_factory(SandboxConfig(seed=7, faults=SEEDED))
    assert _statuses(Api(other.base_url)) == first


def test_faults_can_be_set_at_start(hubspot_sandbox_factory):
    sandbox = hubspot_sandbox_factory(SandboxConfig(faults={"outage": True}))
    assert Api(sandbox.base_url).create(batch(1)).status == 503
    sandbox.control.clear_faults()
    assert Api(sandbox.base_url).create(batch(1)).status == 201


def test_bad_fault_options_are_refused(control):
    with pytest.raises(SandboxControlError):
        control.set_faults(p_bogus=0.5)
    with pytest.raises(SandboxControlError):
        control.set_faults(p_500=0.8, p_503=0.8)
    with pytest.raises(SandboxControlError):
        control.set_faults(script=["explode"])
    assert control.faults()["p_500"] == 0.0


def test_a_stalled_reply_does_not_block_other_clients(api, control):
    control.set_faults(script=["stored_then_timeout"], stored_then_timeout_delay_s=2.0)
    conn = api.connection(timeout=5)
    conn.request(
        "POST",
        "/crm/v3/objects/commerce_payments/batch/create",
        body=json.dumps({"inputs": batch(1)}),
        headers=api.headers(),
    )
    # The script's one fault goes to whichever request arrives first: the second request waits
    # until the first has drawn it (under load it once arrived first and was the stalled one).
    deadline = time.monotonic() + 5
    while not control.stats()["faults_injected"].get("stored_then_timeout") and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    assert api.create(batch(1)).status == 201
    assert time.monotonic() - started < 1.5
    assert conn.getresponse().status == 201
    conn.close()
    with socket.create_connection((api.host, api.port), timeout=1):
        pass


def test_gateway_errors_can_answer_html_like_a_cdn(api, control):
    control.set_faults(script=["502", "504"], html_5xx=True)
    for status in (502, 504):
        reply = api.create(batch(1))
        assert reply.status == status
        assert reply.headers["Content-Type"].startswith("text/html")
        with pytest.raises(ValueError):
            json.loads(reply.raw)
    assert control.payments() == []
