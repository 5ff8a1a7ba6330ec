"""batch/read: by HubSpot id and by a unique property's values, HubSpot's 200/207 answers, its
limits, scopes and rate limit, the forced read faults, and a payment held twice."""

from __future__ import annotations

import pytest
from sandbox_http import payment

from local.hubspot_sandbox import SCHEMA_WRITE_SCOPE, WRITE_SCOPE

READ = "/crm/v3/objects/commerce_payments/batch/read"
READ_DATED = "/crm/objects/2026-09/commerce_payments/batch/read"
KEY = "payment_key"


@pytest.fixture
def stored(api, control):
    control.set_config(unique_property=KEY)
    reply = api.create([payment(**{KEY: "ch_1"}), payment(**{KEY: "ch_2"})])
    assert reply.status == 201
    return {r["properties"][KEY]: r["id"] for r in reply.json["results"]}


@pytest.mark.parametrize("path", [READ, READ_DATED])
def test_reading_by_the_unique_property_finds_what_is_stored_and_names_what_is_not(api, stored, path):
    body = {
        "idProperty": KEY,
        "properties": [KEY, "hs_initial_amount"],
        "inputs": [{"id": "ch_1"}, {"id": "ch_9"}],
    }
    reply = api.request("POST", path, body)
    assert reply.status == 207
    [result] = reply.json["results"]
    assert result["id"] == stored["ch_1"] and result["properties"][KEY] == "ch_1"
    assert (
        "hs_initial_amount" in result["properties"] and result["properties"]["hs_object_id"] == stored["ch_1"]
    )
    [error] = reply.json["errors"]
    assert reply.json["numErrors"] == 1
    assert error["category"] == "OBJECT_NOT_FOUND" and error["context"] == {"ids": ["ch_9"]}


def test_reading_by_id_answers_200_when_every_input_is_found(api, stored):
    reply = api.request("POST", READ, {"inputs": [{"id": i} for i in stored.values()], "properties": [KEY]})
    assert reply.status == 200 and "errors" not in reply.json
    assert {r["properties"][KEY] for r in reply.json["results"]} == {"ch_1", "ch_2"}


def test_a_payment_created_twice_without_its_key_is_held_twice_and_read_by_each_id(api, stored):
    """A copy created without the unique property (e.g. before the property existed) is a second record."""
    copy = api.create([payment()]).json["results"][0]["id"]
    reply = api.request("POST", READ, {"inputs": [{"id": stored["ch_1"]}, {"id": copy}], "properties": [KEY]})
    assert reply.status == 200 and len(reply.json["results"]) == 2
    by_key = api.request("POST", READ, {"idProperty": KEY, "inputs": [{"id": "ch_1"}], "properties": [KEY]})
    assert [r["id"] for r in by_key.json["results"]] == [stored["ch_1"]]  # the key is on one of them


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"inputs": []}, "1 to 100"),
        ({"inputs": [{"id": str(i)} for i in range(101)]}, "1 to 100"),
        ({"inputs": [{"id": 1}]}, "inputs must be a list"),
        ({"idProperty": "hs_initial_amount", "inputs": [{"id": "1"}]}, "not a unique-value property"),
    ],
)
def test_a_malformed_read_is_a_400(api, stored, body, fragment):
    reply = api.request("POST", READ, body)
    assert reply.status == 400 and fragment in reply.json["message"]


def test_reading_needs_a_read_or_write_scope_and_counts_against_the_rate_limit(api, control, stored):
    control.set_config(
        tokens={"schema-only": {"scopes": [SCHEMA_WRITE_SCOPE]}, "writer": {"scopes": [WRITE_SCOPE]}}
    )
    body = {"idProperty": KEY, "inputs": [{"id": "ch_1"}]}
    assert api.request("POST", READ, body, token="schema-only").status == 403
    assert api.request("POST", READ, body, token="writer").status == 200
    control.set_config(rate_limit_per_10s=1)
    assert api.request("POST", READ, body, token="writer").status == 429  # the writer's window is full


def test_forced_read_faults_answer_in_order_and_then_reads_succeed(api, control, stored):
    control.set_faults(read_script=["429", "503"])
    body = {"idProperty": KEY, "inputs": [{"id": "ch_1"}]}
    first, second, third = (api.request("POST", READ, body) for _ in range(3))
    assert (first.status, first.json["policyName"]) == (429, "TEN_SECONDLY_ROLLING")
    assert second.status == 503 and third.status == 200
    assert control.stats()["faults_injected"] == {"read_429": 1, "read_503": 1}
    assert api.create([payment()]).status == 201  # the read faults never touch writes
