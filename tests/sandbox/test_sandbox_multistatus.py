"""Multi-status, result shape and order."""

from __future__ import annotations

import re
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sandbox_http import Api, batch, payment

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _parse_iso(value: str) -> datetime:
    assert isinstance(value, str) and ISO.match(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_mixed_batch_is_207_errors_name_their_trace_ids_and_valid_ones_are_created(api, control):
    good = batch(10)
    bad = batch(5, hs_latest_status="nope")
    inputs = [x for pair in zip(good[:5], bad) for x in pair] + good[5:]
    reply = api.create(inputs)
    assert reply.status == 207
    body = reply.json
    assert body["status"] == "COMPLETE"
    assert body["numErrors"] == len(body["errors"]) == 5
    error_tids = [e["context"]["objectWriteTraceId"] for e in body["errors"]]
    assert all(len(t) == 1 for t in error_tids)
    assert {t[0] for t in error_tids} == {b["objectWriteTraceId"] for b in bad}
    assert {r["objectWriteTraceId"] for r in body["results"]} == {g["objectWriteTraceId"] for g in good}
    assert {p["objectWriteTraceId"] for p in control.payments()} == {g["objectWriteTraceId"] for g in good}


def test_all_inputs_invalid_with_trace_ids_is_207_with_no_results(api, control):
    reply = api.create(batch(3, hs_initial_amount="x"))
    assert reply.status == 207
    assert reply.json["results"] == [] and reply.json["numErrors"] == 3
    assert control.payments() == []


def test_one_input_without_trace_id_turns_an_invalid_input_into_a_400(api, control):
    inputs = batch(4)
    inputs[1]["properties"]["hs_initial_amount"] = "x"
    del inputs[2]["objectWriteTraceId"]
    reply = api.create(inputs)
    assert reply.status == 400
    assert control.payments() == []


def test_all_valid_is_201_without_errors(api, control):
    reply = api.create(batch(4))
    assert reply.status == 201
    assert "errors" not in reply.json and "numErrors" not in reply.json
    assert len(control.payments()) == 4


def test_results_are_not_in_input_order(api):
    inputs = batch(50)
    sent = [i["objectWriteTraceId"] for i in inputs]
    got = [r["objectWriteTraceId"] for r in api.create(inputs).json["results"]]
    assert sorted(got) == sorted(sent)
    assert got != sent


def test_response_body_has_every_required_field_with_the_right_types(api):
    inputs = batch(3, hs_latest_status="succeeded")
    before = datetime.now().astimezone()
    body = api.create(inputs).json
    assert body["status"] in ("PENDING", "PROCESSING", "CANCELED", "COMPLETE")
    started, completed = _parse_iso(body["startedAt"]), _parse_iso(body["completedAt"])
    assert started <= completed and (started - before).total_seconds() > -5
    assert isinstance(body["results"], list) and len(body["results"]) == 3
    sent = {i["objectWriteTraceId"]: i["properties"] for i in inputs}
    ids = set()
    for result in body["results"]:
        assert isinstance(result["id"], str) and result["id"].isdigit()
        ids.add(result["id"])
        props = result["properties"]
        assert isinstance(props, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in props.items()
        )
        for name, value in sent[result["objectWriteTraceId"]].items():
            assert props[name] == value
        assert props["hs_object_id"] == result["id"]
        _parse_iso(props["hs_createdate"])
        _parse_iso(props["hs_lastmodifieddate"])
        _parse_iso(result["createdAt"])
        _parse_iso(result["updatedAt"])
        assert result["archived"] is False
    assert len(ids) == 3


def test_ids_are_unique_across_requests(api):
    ids = [r["id"] for _ in range(3) for r in api.create(batch(20)).json["results"]]
    assert len(ids) == len(set(ids)) == 60


def test_trace_id_echo_can_be_switched_off(api, control):
    assert all("objectWriteTraceId" in r for r in api.create(batch(2)).json["results"])
    control.set_config(echo_trace_id=False)
    results = api.create(batch(2)).json["results"]
    assert len(results) == 2 and all("objectWriteTraceId" not in r for r in results)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.sampled_from(["ok", "bad_amount", "unknown", "bad_status", "missing"]), min_size=1, max_size=30
    )
)
def test_every_input_is_either_created_or_an_error_exactly_once(hubspot_sandbox_process, kinds):
    hubspot_sandbox_process.control.reset(restore_config=True)
    api = Api(hubspot_sandbox_process.base_url)
    overrides = {
        "ok": {},
        "bad_amount": {"hs_initial_amount": "1.2.3"},
        "unknown": {"colour": "red"},
        "bad_status": {"hs_latest_status": "won"},
        "missing": {"hs_initiated_date": None},
    }
    inputs = [payment(**overrides[k]) for k in kinds]
    reply = api.create(inputs)
    body = reply.json
    created = [r["objectWriteTraceId"] for r in body["results"]]
    errored = [e["context"]["objectWriteTraceId"][0] for e in body.get("errors", [])]
    assert sorted(created + errored) == sorted(i["objectWriteTraceId"] for i in inputs)
    assert set(created) == {i["objectWriteTraceId"] for i, k in zip(inputs, kinds) if k == "ok"}
    assert reply.status == (201 if not errored else 207)
    assert hubspot_sandbox_process.control.stats()["payments_stored"] == len(created)
