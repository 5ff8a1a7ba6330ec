"""Parsing, rule by rule: every bad body is rejected with a specific reason, nothing raises."""

import json

import pytest

from payments_drain.messages import parse_record
from payments_drain.outcomes import Payment, Rejection
from tests.twins import payment_body, sqs_record


def parse(body, unique_property=None, message_id="m-1"):
    return parse_record(sqs_record(body, message_id, receive_count=3), unique_property)


def test_valid_payment_becomes_an_input_with_its_message_id_as_trace_id():
    body = payment_body("ch_1", hs_latest_status="succeeded")
    body["associations"] = [{"to": {"id": 1234}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}]}]
    payment = parse(body)
    assert isinstance(payment, Payment)
    assert payment.payment_key == "ch_1"
    assert payment.message.receive_count == 3
    item = payment.hubspot_input()
    assert item["objectWriteTraceId"] == "m-1"
    assert item["properties"]["hs_latest_status"] == "succeeded"
    assert item["associations"][0]["to"] == {"id": "1234"}  # HubSpot ids are strings


def test_without_payment_key_the_message_id_is_the_key():
    assert parse(payment_body(None), message_id="m-9").payment_key == "m-9"


def test_unique_property_is_filled_from_the_payment_key():
    payment = parse(payment_body("ch_7"), unique_property="payment_key")
    assert payment.properties["payment_key"] == "ch_7"


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ("{not json", "INVALID_JSON", "not valid JSON"),
        ("", "INVALID_JSON", "not valid JSON"),
        ("[1, 2]", "INVALID_BODY", "JSON object"),
        ('"just a string"', "INVALID_BODY", "JSON object"),
        ({"paymentKey": "k"}, "MISSING", "properties"),
        ({"properties": {"hs_initial_amount": 49.9, "hs_initiated_date": "2026-11-27"}}, "STRING_TYPE", "properties.hs_initial_amount"),
        ({"properties": [], "paymentKey": "k"}, "DICT_TYPE", "properties"),
        ({**payment_body("k"), "extra": 1}, "EXTRA_FORBIDDEN", "extra"),
        ({**payment_body("k"), "paymentKey": ""}, "STRING_TOO_SHORT", "paymentKey"),
        ({**payment_body("k"), "paymentKey": "has space"}, "STRING_PATTERN_MISMATCH", "paymentKey"),
        ({**payment_body("k"), "paymentKey": 42}, "STRING_TYPE", "paymentKey"),
        ({"properties": {"hs_initiated_date": "2026-11-27"}}, "REQUIRED_PROPERTY", "hs_initial_amount"),
        ({"properties": {"hs_initial_amount": "1"}}, "REQUIRED_PROPERTY", "hs_initiated_date"),
        (payment_body("k", amount="forty"), "INVALID_DECIMAL", "hs_initial_amount"),
        (payment_body("k", amount="NaN"), "INVALID_DECIMAL", "hs_initial_amount"),
        (payment_body("k", hs_fees_amount="1,5"), "INVALID_DECIMAL", "hs_fees_amount"),
        (payment_body("k", hs_payout_date="tomorrow"), "INVALID_DATE", "hs_payout_date"),
        (payment_body("k", hs_currency_code="EURO"), "INVALID_CURRENCY", "hs_currency_code"),
        (payment_body("k", hs_currency_code="eur"), "INVALID_CURRENCY", "hs_currency_code"),
        (payment_body("k", hs_latest_status="paid"), "INVALID_OPTION", "hs_latest_status"),
        (payment_body("k", hs_payment_method_type="bitcoin"), "INVALID_OPTION", "hs_payment_method_type"),
        (payment_body("k", hs_processor_type="paypal"), "INVALID_OPTION", "hs_processor_type"),
        (payment_body("k", hs_payment_id="123"), "READ_ONLY_VALUE", "hs_payment_id"),
        (payment_body("k", hs_platform_fee_amount="1"), "READ_ONLY_VALUE", "hs_platform_fee_amount"),
        (payment_body("k", hs_colour="red"), "PROPERTY_DOESNT_EXIST", "hs_colour"),
        (payment_body("k", hs_internal_comment="x" * 65_537), "VALUE_TOO_LONG", "hs_internal_comment"),
        ({**payment_body("k"), "associations": [{"to": {"id": "12"}, "types": [{"associationCategory": "FRIENDS", "associationTypeId": 387}]}]},
         "LITERAL_ERROR", "associationCategory"),
        ({**payment_body("k"), "associations": [{"to": {"id": "12"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": "387"}]}]},
         "INT_TYPE", "associationTypeId"),
        ({**payment_body("k"), "associations": [{"to": {"id": "12"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 2**31}]}]},
         "LESS_THAN_EQUAL", "associationTypeId"),
        ({**payment_body("k"), "associations": [{"to": {"id": "12"}, "types": []}]}, "TOO_SHORT", "types"),
        ({**payment_body("k"), "associations": [{"to": {"id": "abc"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]}]},
         "", "to.id"),
    ],
)
def test_each_bad_body_is_rejected_with_a_specific_reason(body, code, fragment):
    rejection = parse(body)
    assert isinstance(rejection, Rejection)
    assert rejection.reason.category == "INVALID_MESSAGE"
    assert fragment in rejection.reason.message
    assert code in (rejection.reason.code or "")
    assert rejection.message.message_id == "m-1"


def test_rejection_carries_the_body_as_parsed_or_raw_and_the_key_when_known():
    raw = parse("{broken")
    assert raw.payment == "{broken" and raw.payment_key == "m-1"
    parsed = parse(payment_body("ch_5", amount="x"))
    assert parsed.payment["paymentKey"] == "ch_5" and parsed.payment_key == "ch_5"


def test_reason_never_echoes_the_offending_value():
    secret_looking = "4111111111111111"
    rejection = parse({"properties": {"hs_initial_amount": int(secret_looking), "hs_initiated_date": "x"}})
    assert secret_looking not in json.dumps(rejection.reason.as_dict())


def test_unique_property_set_by_producer_must_match_the_key():
    rejection = parse(payment_body("ch_1", payment_key="ch_2"), unique_property="payment_key")
    assert rejection.reason.code == "UNIQUE_PROPERTY_MISMATCH"


def test_deep_nesting_is_rejected_not_raised():
    rejection = parse("[" * 200_000 + "]" * 200_000)
    assert isinstance(rejection, Rejection) and rejection.reason.code in ("INVALID_JSON", "INVALID_BODY")


def test_custom_properties_are_left_to_hubspot():
    assert isinstance(parse(payment_body("k", order_ref="A-1")), Payment)


@pytest.mark.parametrize("date", ["2026-11-27T10:00:00Z", "2026-11-27T10:00:00+01:00", "2026-11-27", "1764237600000"])
def test_dates_iso_or_epoch_millis(date):
    assert isinstance(parse(payment_body("k", hs_payout_date=date)), Payment)
