"""Validation as HubSpot does it: per input (207 with trace ids, 400 without) and per request."""

from __future__ import annotations

import json

import pytest
from sandbox_http import batch, payment

ASSOC = {
    "to": {"id": "1234"},
    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}],
}


def _with(assoc=None, **props):
    def make(trace):
        item = payment(trace, **props)
        if assoc is not None:
            item["associations"] = assoc
        return item

    return make


def _props(properties):
    def make(trace):
        item = payment(trace)
        item["properties"] = properties
        return item

    return make


INVALID = {
    "bool_value": (_with(hs_internal_comment=True), "INVALID_PROPERTY_VALUE_TYPE"),
    "object_value": (_with(hs_initial_amount={"amount": "1"}), "INVALID_PROPERTY_VALUE_TYPE"),
    "list_value": (_with(hs_internal_comment=["a"]), "INVALID_PROPERTY_VALUE_TYPE"),
    "number_not_an_option": (_with(hs_latest_status=1), "INVALID_OPTION"),
    "number_not_a_currency": (_with(hs_currency_code=978), "INVALID_OPTION"),
    "unknown_property": (_with(payment_key="k1"), "PROPERTY_DOESNT_EXIST"),
    "read_only_payment_method": (_with(hs_payment_method="card"), "READ_ONLY_VALUE"),
    "read_only_platform_fee": (_with(hs_platform_fee_amount="1.00"), "READ_ONLY_VALUE"),
    "read_only_object_id": (_with(hs_object_id="5"), "READ_ONLY_VALUE"),
    "missing_amount": (_with(hs_initial_amount=None), "MISSING_REQUIRED_PROPERTY"),
    "missing_date": (_with(hs_initiated_date=None), "MISSING_REQUIRED_PROPERTY"),
    "empty_amount": (_with(hs_initial_amount=""), "MISSING_REQUIRED_PROPERTY"),
    "non_numeric_amount": (_with(hs_initial_amount="12,50"), "INVALID_DECIMAL"),
    "non_numeric_fees": (_with(hs_fees_amount="abc"), "INVALID_DECIMAL"),
    "bad_date": (_with(hs_initiated_date="27/11/2026"), "INVALID_DATE"),
    "bad_status": (_with(hs_latest_status="paid"), "INVALID_OPTION"),
    "bad_method_type": (_with(hs_payment_method_type="bitcoin"), "INVALID_OPTION"),
    "bad_processor": (_with(hs_processor_type="paypal"), "INVALID_OPTION"),
    "currency_lowercase": (_with(hs_currency_code="usd"), "INVALID_OPTION"),
    "currency_two_letters": (_with(hs_currency_code="US"), "INVALID_OPTION"),
    "currency_not_iso": (_with(hs_currency_code="ABC"), "INVALID_OPTION"),
    "string_too_long": (_with(hs_internal_comment="x" * 65_537), "INVALID_STRING_LENGTH"),
    "properties_not_object": (_props(["hs_initial_amount"]), "INVALID_INPUT"),
    "association_unknown_category": (
        _with([{"to": {"id": "1"}, "types": [{"associationCategory": "FRIENDS", "associationTypeId": 387}]}]),
        "INVALID_ASSOCIATION_CATEGORY",
    ),
    "association_string_type_id": (
        _with(
            [
                {
                    "to": {"id": "1"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": "387"}],
                }
            ]
        ),
        "INVALID_ASSOCIATION_TYPE_ID",
    ),
    "association_float_type_id": (
        _with(
            [
                {
                    "to": {"id": "1"},
                    "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": 3.5}],
                }
            ]
        ),
        "INVALID_ASSOCIATION_TYPE_ID",
    ),
    "association_type_id_beyond_int32": (
        _with(
            [
                {
                    "to": {"id": "1"},
                    "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": 2**31}],
                }
            ]
        ),
        "INVALID_ASSOCIATION_TYPE_ID",
    ),
    "association_bad_target": (
        _with(
            [
                {
                    "to": {"id": "abc"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}],
                }
            ]
        ),
        "INVALID_ASSOCIATION",
    ),
    "association_no_types": (_with([{"to": {"id": "1"}, "types": []}]), "INVALID_ASSOCIATION"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_input_with_trace_ids_is_an_error_in_a_207(api, control, case):
    make, code = INVALID[case]
    good, bad = payment(), make(True)
    reply = api.create([good, bad])
    assert reply.status == 207, reply.raw[:300]
    body = reply.json
    assert body["numErrors"] == 1
    [error] = body["errors"]
    assert error["status"] == "error"
    assert error["category"] == "VALIDATION_ERROR"
    assert error["context"]["objectWriteTraceId"] == [bad["objectWriteTraceId"]]
    assert code in [e["code"] for e in error["errors"]]
    assert [r["objectWriteTraceId"] for r in body["results"]] == [good["objectWriteTraceId"]]
    assert [p["objectWriteTraceId"] for p in control.payments()] == [good["objectWriteTraceId"]]


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_input_without_trace_ids_fails_the_whole_request_with_400(api, control, case):
    make, code = INVALID[case]
    reply = api.create([payment(False), make(False), payment(False)])
    assert reply.status == 400, reply.raw[:300]
    body = reply.json
    assert body["status"] == "error"
    assert body["category"] == "VALIDATION_ERROR"
    assert body["correlationId"] == reply.headers["X-HubSpot-Correlation-Id"]
    assert code in [e["code"] for e in body["errors"]]
    assert code in body["message"]
    assert control.payments() == []


def test_property_errors_name_the_property(api):
    reply = api.create([payment(False, hs_latest_status="paid", nope="1")])
    body = reply.json
    assert body["message"].startswith("Property values were not valid: ")
    named = {e["in"]: e["code"] for e in body["errors"]}
    assert named == {"hs_latest_status": "INVALID_OPTION", "nope": "PROPERTY_DOESNT_EXIST"}
    assert {e["context"]["propertyName"][0] for e in body["errors"]} == {"hs_latest_status", "nope"}


@pytest.mark.parametrize(
    "props",
    [
        {"hs_initiated_date": "1764237600000"},
        {"hs_initiated_date": "2026-11-27"},
        {"hs_initiated_date": "2026-11-27T10:00:00.123+01:00"},
        {
            "hs_latest_status": "disputed_won",
            "hs_payment_method_type": "wire_transfer",
            "hs_processor_type": "none",
        },
        {
            "hs_currency_code": "JPY",
            "hs_fees_amount": "0.3",
            "hs_refunds_amount": "-1",
            "hs_initial_amount": "1e3",
        },
        {"hs_internal_comment": "", "hs_latest_status": ""},
        {
            "hs_billing_address_city": "Lyon",
            "hs_shipping_address_zip": "69001",
            "hs_shipping_ship_to_name": "A",
        },
        {
            "hs_customer_email": "a@example.com",
            "hs_payment_method_last_4": "4242",
            "hs_reference_number": "r",
        },
    ],
)
def test_valid_variants_are_accepted(api, control, props):
    item = payment(**props)
    item["associations"] = [
        ASSOC,
        {"to": {"id": 99}, "types": [{"associationCategory": "WORK", "associationTypeId": 1}]},
    ]
    reply = api.create([item])
    assert reply.status == 201, reply.raw[:300]
    [stored] = control.payments()
    for name, value in props.items():  # an empty string stores no value: HubSpot clears the property
        assert stored["properties"].get(name) == (value if value != "" else None)
    assert stored["associations"] == item["associations"]


def test_numbers_are_valid_values_stored_as_strings(api, control):
    """HubSpot accepts JSON numbers as property values and stores them as strings."""
    item = payment(
        hs_initial_amount=49.9, hs_fees_amount=2, hs_initiated_date=1764237600000, hs_internal_comment=7
    )
    reply = api.create([item])
    assert reply.status == 201, reply.raw[:300]
    [stored] = control.payments()
    expected = {
        "hs_initial_amount": "49.9",
        "hs_fees_amount": "2",
        "hs_initiated_date": "1764237600000",
        "hs_internal_comment": "7",
    }
    assert {k: stored["properties"][k] for k in expected} == expected
    assert {k: reply.json["results"][0]["properties"][k] for k in expected} == expected


def test_extra_properties_are_known_and_writable(api, control):
    assert api.create([payment(False, order_ref="o-1")]).status == 400
    control.set_config(extra_properties=["order_ref"])
    assert api.create([payment(False, order_ref="o-1")]).status == 201


def test_more_than_100_inputs_is_a_400_for_the_request(api, control):
    reply = api.create(batch(101))
    assert reply.status == 400
    assert reply.json["category"] == "VALIDATION_ERROR"
    assert control.payments() == []
    assert api.create(batch(100)).status == 201
    assert len(control.payments()) == 100


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b'{"inputs": [', "Invalid input JSON"),
        (b"not json", "Invalid input JSON"),
        (b"\xff\xfe\xfa", "Invalid input JSON"),
        (b'["inputs"]', "inputs"),
        (b'{"inputs": {}}', "inputs"),
        (b'{"inputs": []}', "at least one"),
    ],
)
def test_malformed_bodies_are_a_400(api, control, raw, fragment):
    reply = api.request("POST", "/crm/v3/objects/commerce_payments/batch/create", raw=raw)
    assert reply.status == 400
    assert reply.json["category"] == "VALIDATION_ERROR"
    assert fragment in reply.json["message"]
    assert control.payments() == []


def test_non_json_content_type_is_415(api, control):
    raw = json.dumps({"inputs": batch(1)}).encode()
    reply = api.request(
        "POST", "/crm/v3/objects/commerce_payments/batch/create", raw=raw, content_type="text/plain"
    )
    assert reply.status == 415
    assert control.payments() == []


def test_duplicate_trace_ids_fail_the_request_with_400(api, control):
    a, b, c = batch(3)
    c["objectWriteTraceId"] = a["objectWriteTraceId"]
    reply = api.create([a, b, c])
    assert reply.status == 400
    body = reply.json
    dup = [e for e in body["errors"] if e["code"] == "DUPLICATE_OBJECT_WRITE_TRACE_ID"]
    assert len(dup) == 2  # one per input carrying the duplicated id
    assert a["objectWriteTraceId"] in body["message"]
    assert control.payments() == []
