"""The control endpoint: inspection, reset, configuration."""

from __future__ import annotations

import http.client

import pytest
from sandbox_http import LIST, batch

from local.hubspot_sandbox import SandboxControlError


def test_stats_count_requests_inputs_payments_and_windows(api, control):
    api.create(batch(3))
    api.create([*batch(2), *batch(1, hs_initial_amount="x")])
    api.create(batch(1), token=None)
    api.request("POST", "/crm/v3/objects/commerce_payments/batch/create", raw=b"{")
    api.get(LIST)
    stats = control.stats()
    assert stats["requests_total"] == 5
    assert stats["requests_by_status"] == {"201": 1, "207": 1, "401": 1, "400": 1, "200": 1}
    assert stats["requests_by_route"] == {"create": 4, "list": 1}
    assert stats["inputs_received"] == 7
    assert stats["payments_stored"] == 5
    assert stats["max_requests_in_window"] == 5
    assert stats["max_admitted_in_window"] == 4  # the 401 was not admitted
    assert stats["daily_used"] == 4
    assert stats["window_ms"] == 10_000


def test_reset_clears_payments_counters_and_windows(api, control):
    control.set_config(rate_limit_per_10s=2)
    assert [api.create(batch(1)).status for _ in range(3)] == [201, 201, 429]
    control.reset()
    stats = control.stats()
    assert (
        stats["payments_stored"] == 0 and stats["requests_total"] == 0 and stats["requests_by_status"] == {}
    )
    assert stats["max_requests_in_window"] == 0 and stats["daily_used"] == 0
    assert control.payments() == []
    assert api.create(batch(1)).status == 201  # the window was cleared, the config kept
    assert control.config()["rate_limit_per_10s"] == 2
    control.reset(restore_config=True)
    assert control.config()["rate_limit_per_10s"] == 190


def test_payments_lists_everything_with_all_properties(api, control):
    inputs = batch(3, hs_latest_status="succeeded")
    api.create(inputs)
    payments = control.payments()
    assert [p["objectWriteTraceId"] for p in payments] == [i["objectWriteTraceId"] for i in inputs]
    assert all(p["properties"]["hs_latest_status"] == "succeeded" for p in payments)
    assert control.payments(inputs[1]["objectWriteTraceId"])[0]["id"] == payments[1]["id"]
    assert control.payments("unknown") == []


def test_trace_ids_stored_twice_are_counted(api, control):
    inputs = batch(2)
    api.create(inputs)
    api.create(inputs)  # a retry that writes the same payments again
    assert control.stats()["trace_ids_stored_more_than_once"] == 2
    assert len(control.payments(inputs[0]["objectWriteTraceId"])) == 2


def test_set_config_returns_the_config_in_force(control):
    cfg = control.set_config(rate_limit_per_10s=5, daily_limit=9, echo_trace_id=False, faults={"p_502": 0.5})
    assert cfg["rate_limit_per_10s"] == 5 and cfg["daily_limit"] == 9 and cfg["echo_trace_id"] is False
    assert cfg["faults"]["p_502"] == 0.5
    assert control.config() == cfg


def test_control_errors(hubspot_sandbox, control):
    with pytest.raises(SandboxControlError):
        control.set_config(no_such_option=1)
    conn = http.client.HTTPConnection("127.0.0.1", int(hubspot_sandbox.base_url.rsplit(":", 1)[1]), timeout=5)
    conn.request("POST", "/_sandbox/config", body=b"{not json")
    assert conn.getresponse().status == 400
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", int(hubspot_sandbox.base_url.rsplit(":", 1)[1]), timeout=5)
    conn.request("GET", "/_sandbox/nothing")
    assert conn.getresponse().status == 404
    conn.close()
    # control calls are not HubSpot requests: not counted
    assert control.stats()["requests_total"] == 0


def test_put_faults_replaces_and_post_merges(control):
    control.set_faults(p_500=0.5, latency_ms=10)
    conn = http.client.HTTPConnection("127.0.0.1", int(control.base_url.rsplit(":", 1)[1]), timeout=5)
    conn.request("PUT", "/_sandbox/faults", body=b'{"p_503": 0.2}')
    faults = __import__("json").loads(conn.getresponse().read())
    conn.close()
    assert faults["p_503"] == 0.2 and faults["p_500"] == 0.0 and faults["latency_ms"] == 0.0
    assert control.set_faults(p_502=0.1)["p_503"] == 0.2
    assert control.clear_faults()["p_503"] == 0.0
