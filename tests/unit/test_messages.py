"""Parsing, rule by rule: every bad body is rejected with a specific reason, nothing raises."""

import importlib.util
import json
from pathlib import Path

import pytest
from payments_drain.core.messages import parse_record
from payments_drain.core.outcomes import Payment, Rejection

from tests.twins import payment_body, sqs_record


def parse(body, unique_property=None, message_id="m-1"):
    return parse_record(sqs_record(body, message_id, receive_count=3), unique_property)


def test_valid_payment_becomes_an_input_with_its_message_id_as_trace_id():
    body = payment_body("ch_1", hs_latest_status="succeeded")
    body["associations"] = [
        {"to": {"id": 1234}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}]}
    ]
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
        (
            {"properties": {"hs_initial_amount": True, "hs_initiated_date": "2026-11-27"}},
            "INVALID_PROPERTY_VALUE",
            "properties.hs_initial_amount must be a string or a finite number",
        ),
        (
            {"properties": {"hs_initial_amount": {"eur": 1}, "hs_initiated_date": "2026-11-27"}},
            "INVALID_PROPERTY_VALUE",
            "properties.hs_initial_amount",
        ),
        (
            {"properties": {"hs_initial_amount": None, "hs_initiated_date": "2026-11-27"}},
            "INVALID_PROPERTY_VALUE",
            "properties.hs_initial_amount",
        ),
        (
            '{"properties": {"hs_initial_amount": 1e400, "hs_initiated_date": "2026-11-27"}}',
            "INVALID_PROPERTY_VALUE",
            "properties.hs_initial_amount",
        ),
        (
            '{"properties": {"hs_initial_amount": NaN, "hs_initiated_date": "2026-11-27"}}',
            "INVALID_JSON",
            "not valid JSON",
        ),
        (payment_body("k", hs_latest_status=1), "INVALID_OPTION", "hs_latest_status"),
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
        (
            {
                **payment_body("k"),
                "associations": [
                    {
                        "to": {"id": "12"},
                        "types": [{"associationCategory": "FRIENDS", "associationTypeId": 387}],
                    }
                ],
            },
            "LITERAL_ERROR",
            "associationCategory",
        ),
        (
            {
                **payment_body("k"),
                "associations": [
                    {
                        "to": {"id": "12"},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": "387"}],
                    }
                ],
            },
            "INT_TYPE",
            "associationTypeId",
        ),
        (
            {
                **payment_body("k"),
                "associations": [
                    {
                        "to": {"id": "12"},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 2**31}],
                    }
                ],
            },
            "LESS_THAN_EQUAL",
            "associationTypeId",
        ),
        ({**payment_body("k"), "associations": [{"to": {"id": "12"}, "types": []}]}, "TOO_SHORT", "types"),
        # an association that is not an object is named, not taken for the body
        (
            {**payment_body("k"), "associations": [1]},
            "DICT_TYPE",
            "associations.0: Input should be a valid dict",
        ),
        (
            {**payment_body("k"), "associations": [{"to": "12", "types": []}]},
            "DICT_TYPE",
            "associations.0.to",
        ),
        (
            {
                **payment_body("k"),
                "associations": [
                    {
                        "to": {"id": "abc"},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
                    }
                ],
            },
            "",
            "to.id",
        ),
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


@pytest.mark.parametrize(
    "date", ["2026-11-27T10:00:00Z", "2026-11-27T10:00:00+01:00", "2026-11-27", "1764237600000"]
)
def test_dates_iso_or_epoch_millis(date):
    assert isinstance(parse(payment_body("k", hs_payout_date=date)), Payment)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (49.9, "49.9"),
        (100, "100"),
        (0.1, "0.1"),
        (-3.5, "-3.5"),
        (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"),
        (123456789012345678901234567890, "123456789012345678901234567890"),
    ],
)
def test_numbers_are_valid_values_and_sent_as_the_strings_hubspot_stores(value, text):
    payment = parse(
        {
            "properties": {
                "hs_initial_amount": value,
                "hs_initiated_date": 1764237600000,
                "hs_internal_comment": value,
            }
        }
    )
    assert isinstance(payment, Payment)
    assert payment.hubspot_input()["properties"] == {
        "hs_initial_amount": text,
        "hs_initiated_date": "1764237600000",
        "hs_internal_comment": text,
    }


def test_a_number_with_more_digits_than_python_converts_is_rejected_not_raised():
    rejection = parse(
        '{"properties": {"hs_initial_amount": 1' + "0" * 5000 + ', "hs_initiated_date": "2026-11-27"}}'
    )
    assert isinstance(rejection, Rejection) and rejection.reason.code == "INVALID_JSON"


# -- the producers' channels: SNS (without raw delivery) and EventBridge wrap the payment ---------------------


def events_generator():
    spec = importlib.util.spec_from_file_location(
        "events_generate", Path(__file__).parents[2] / "events" / "generate.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EVENTS = events_generator()


def sns(payment, seed="1", **fields):
    body = json.loads(
        EVENTS.sns_notification(payment if isinstance(payment, str) else json.dumps(payment), seed)
    )
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def eventbridge(detail, seed="1", **fields):
    body = EVENTS.eventbridge_event(detail, seed)
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def test_an_sns_wrapped_payment_is_the_payment_in_message():
    body = sns(payment_body("ch_1", hs_latest_status="succeeded"))
    payment = parse(body)
    assert isinstance(payment, Payment)
    assert payment.payment_key == "ch_1"
    assert payment.properties["hs_latest_status"] == "succeeded"
    assert json.loads(payment.message.body) == body  # the message keeps what SQS delivered


def test_an_eventbridge_wrapped_payment_is_the_payment_in_detail():
    payment = parse(eventbridge({**payment_body("ch_2", amount=120)}))
    assert isinstance(payment, Payment)
    assert payment.payment_key == "ch_2" and payment.properties["hs_initial_amount"] == "120"


def test_without_payment_key_a_wrapped_payment_is_keyed_by_its_channel_message_id():
    """SNS and EventBridge may deliver one message twice, each copy a new SQS message with its own
    messageId: their own id is the same on every copy, so it protects against that too."""
    by_sns = [parse(sns(payment_body(None), seed="a"), message_id=f"sqs-{i}") for i in range(2)]
    assert (
        by_sns[0].payment_key
        == by_sns[1].payment_key
        == json.loads(EVENTS.sns_notification("{}", "a"))["MessageId"]
    )
    by_events = [parse(eventbridge(payment_body(None), seed="b"), message_id=f"sqs-{i}") for i in range(2)]
    assert by_events[0].payment_key == by_events[1].payment_key == EVENTS.eventbridge_event({}, "b")["id"]


def test_the_unique_property_of_a_wrapped_payment_holds_its_key():
    assert (
        parse(sns(payment_body("ch_9")), unique_property="payments_drain_key").properties[
            "payments_drain_key"
        ]
        == "ch_9"
    )


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (
            sns(payment_body("ch_3", amount="forty")),
            "INVALID_DECIMAL",
            "Message.properties.hs_initial_amount",
        ),
        (sns({**payment_body("ch_3"), "extra": 1}), "EXTRA_FORBIDDEN", "Message.extra"),
        (sns("{broken"), "INVALID_JSON", "SNS Message is not valid JSON"),
        (sns("[1, 2]"), "INVALID_BODY", "the SNS Message must be a JSON object"),
        (sns(payment_body("ch_3"), Message=None), "INVALID_SNS_NOTIFICATION", "Message"),
        (sns(payment_body("ch_3"), Message={"paymentKey": "ch_3"}), "INVALID_SNS_NOTIFICATION", "Message"),
        (sns(payment_body("ch_3"), UnsubscribeURL="not a url"), "INVALID_SNS_NOTIFICATION", "UnsubscribeUrl"),
        (
            sns(
                payment_body("ch_3"),
                Type="SubscriptionConfirmation",
                SubscribeURL="https://sns.example/confirm",
            ),
            "SNS_SUBSCRIPTION_MESSAGE",
            "SubscribeURL",
        ),
        (
            eventbridge(payment_body("ch_4", hs_payment_method_type="crypto")),
            "INVALID_OPTION",
            "detail.properties.hs_payment_method_type",
        ),
        (eventbridge("a string"), "INVALID_EVENTBRIDGE_EVENT", "detail"),
        (eventbridge([payment_body("ch_4")]), "INVALID_EVENTBRIDGE_EVENT", "detail"),
        (eventbridge(payment_body("ch_4"), time=None), "INVALID_EVENTBRIDGE_EVENT", "time"),
        (
            eventbridge({"properties": {"hs_initial_amount": "1"}, "paymentKey": "ch_4"}),
            "REQUIRED_PROPERTY",
            "detail.properties.hs_initiated_date",
        ),
    ],
)
def test_a_bad_wrapped_payment_is_rejected_naming_its_key_and_carrying_the_original_body(
    body, code, fragment
):
    rejection = parse(body, message_id="m-w")
    assert isinstance(rejection, Rejection)
    assert rejection.reason.code == code and fragment in rejection.reason.message
    assert rejection.payment == body  # the report carries what the producer's channel delivered
    if code in ("INVALID_SNS_NOTIFICATION", "INVALID_EVENTBRIDGE_EVENT", "SNS_SUBSCRIPTION_MESSAGE"):
        assert rejection.payment_key == "m-w"  # a wrapper it cannot read names no payment
        return
    inner = body.get("detail") if "detail" in body else body.get("Message")
    if isinstance(inner, str):
        try:
            inner = json.loads(inner)
        except ValueError:
            inner = None
    if isinstance(inner, dict) and isinstance(inner.get("paymentKey"), str):
        assert rejection.payment_key == inner["paymentKey"]


def test_the_sample_events_of_each_channel_parse_as_their_docstrings_say():
    """events/sns-batch.json and events/eventbridge-batch.json: each record by its own shape."""
    outcomes = {}
    for name in ("sns-batch.json", "eventbridge-batch.json"):
        event = json.loads((Path(__file__).parents[2] / "events" / name).read_text(encoding="utf-8"))
        outcomes[name] = [parse_record(record) for record in event["Records"]]
    sns_results, events_results = outcomes["sns-batch.json"], outcomes["eventbridge-batch.json"]
    assert [type(r).__name__ for r in sns_results] == [
        "Payment",
        "Payment",
        "Payment",
        "Rejection",
        "Payment",
    ]
    assert sns_results[2].properties["hs_initial_amount"] == "75.5"
    assert sns_results[3].payment_key == "ch_3QxD4004" and sns_results[3].reason.code == "INVALID_CURRENCY"
    assert [type(r).__name__ for r in events_results] == [
        "Payment",
        "Payment",
        "Rejection",
        "Payment",
        "Payment",
    ]
    assert events_results[1].properties["hs_initial_amount"] == "120"
    assert (
        events_results[2].payment_key == "ch_3QxE5003" and events_results[2].reason.code == "INVALID_OPTION"
    )


def test_a_body_holding_a_lone_surrogate_is_rejected_not_raised():
    """SQS refuses these characters in a body, but a hand-made event (a test, `sam local invoke`,
    a Lambda event JSON with "\\ud800") can hold one: pydantic_core's parser raised TypeError, and
    parse_record let it out, so one record would have failed the whole batch."""
    record = sqs_record(payment_body("k"), "m1")
    record["body"] = '{"paymentKey": "k", "properties": {"hs_internal_comment": "\ud800"}}'
    rejection = parse_record(record)
    assert isinstance(rejection, Rejection) and rejection.reason.code == "INVALID_JSON"
    assert rejection.reason.message == "body is not valid JSON: it holds a lone surrogate"
    assert rejection.payment_key == "k"  # the report names the payment, as for any malformed body
