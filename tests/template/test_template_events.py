"""events/*.json are SQS events exactly as Lambda delivers them, and say what their names promise."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from decimal import Decimal, InvalidOperation

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel
from cfn_template import EVENTS_DIR

EVENT_FILES = (
    "valid-batch.json",
    "mixed-batch.json",
    "fifo-batch.json",
    "sns-batch.json",
    "eventbridge-batch.json",
)
REQUIRED_RECORD_KEYS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}
REQUIRED_ATTRIBUTES = {
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
}
FIFO_ATTRIBUTES = {"SequenceNumber", "MessageGroupId", "MessageDeduplicationId"}


def load(name):
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


def bodies(name):
    """Each record's body parsed as JSON, or None when it is not JSON."""
    parsed = []
    for record in load(name)["Records"]:
        try:
            parsed.append(json.loads(record["body"]))
        except json.JSONDecodeError:
            parsed.append(None)
    return parsed


def generator():
    spec = importlib.util.spec_from_file_location("events_generate", EVENTS_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_events_dir_holds_exactly_the_sample_events():
    assert sorted(p.name for p in EVENTS_DIR.glob("*.json")) == sorted(EVENT_FILES)


@pytest.mark.parametrize("name", EVENT_FILES)
def test_event_parses_as_powertools_sqs_model(name):
    event = SqsModel.model_validate(load(name))
    assert len(event.Records) >= 5
    assert all(record.eventSource == "aws:sqs" for record in event.Records)


@pytest.mark.parametrize("name", EVENT_FILES)
def test_every_record_has_every_field_lambda_sends(name):
    fifo = name.startswith("fifo")
    for record in load(name)["Records"]:
        assert REQUIRED_RECORD_KEYS <= set(record)
        expected = REQUIRED_ATTRIBUTES | (FIFO_ATTRIBUTES if fifo else set())
        assert expected <= set(record["attributes"])
        assert all(isinstance(v, str) for v in record["attributes"].values())
        assert record["eventSourceARN"].endswith(".fifo") is fifo
        assert record["eventSourceARN"].split(":")[3] == record["awsRegion"]


@pytest.mark.parametrize("name", EVENT_FILES)
def test_md5_of_body_is_the_real_digest(name):
    for record in load(name)["Records"]:
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode("utf-8")).hexdigest()


@pytest.mark.parametrize("name", EVENT_FILES)
def test_md5_of_message_attributes_is_sqs_digest(name):
    digest = generator().md5_of_message_attributes
    for record in load(name)["Records"]:
        assert record["md5OfMessageAttributes"] == digest(record["messageAttributes"])


def test_message_attribute_digest_matches_a_known_sqs_value():
    # Computed independently with moto's SQS implementation for this attribute set.
    attributes = {"producer": {"stringValue": "checkout-service", "dataType": "String"}}
    assert generator().md5_of_message_attributes(attributes) == "9184f55d174d93ddb5ba73e169b0fc0d"


@pytest.mark.parametrize("name", EVENT_FILES)
def test_message_ids_and_receipt_handles_are_unique(name):
    records = load(name)["Records"]
    assert len({r["messageId"] for r in records}) == len(records)
    assert len({r["receiptHandle"] for r in records}) == len(records)


def test_committed_events_match_the_generator():
    module = generator()
    for name, build in module.EVENTS.items():
        assert (EVENTS_DIR / name).read_text(encoding="utf-8") == module.render(build), name


def _is_valid_payment(body):
    if not isinstance(body, dict) or not body.get("paymentKey"):
        return False
    properties = body.get("properties", {})
    try:
        Decimal(properties["hs_initial_amount"])
    except (KeyError, InvalidOperation):
        return False
    return all(isinstance(v, str) for v in properties.values()) and "hs_initiated_date" in properties


def test_valid_batch_is_five_valid_payments_with_string_properties():
    parsed = bodies("valid-batch.json")
    assert len(parsed) == 5
    assert all(_is_valid_payment(body) for body in parsed)
    assert len({body["paymentKey"] for body in parsed}) == 5
    assert any("associations" in body for body in parsed)
    for body in parsed:
        for association in body.get("associations", []):
            assert association["to"]["id"].isdigit()
            assert all(isinstance(t["associationTypeId"], int) for t in association["types"])


def test_mixed_batch_has_every_kind_of_bad_message_among_valid_ones():
    parsed = bodies("mixed-batch.json")
    props = [body["properties"] if isinstance(body, dict) else {} for body in parsed]
    assert None in parsed, "malformed JSON"
    assert any(isinstance(b, dict) and "hs_initial_amount" not in p for b, p in zip(parsed, props)), (
        "missing amount"
    )

    def not_numeric(value):
        try:
            Decimal(value)
        except InvalidOperation:
            return True
        return False

    assert any(not_numeric(p["hs_initial_amount"]) for p in props if "hs_initial_amount" in p), "non-numeric"
    assert any("hs_payment_colour" in p for p in props), "unknown property"
    assert any(len(p.get("hs_currency_code", "EUR")) != 3 for p in props), "bad currency"
    assert any(p.get("hs_payment_method_type") == "crypto" for p in props), "bad enum option"
    assert sum(_is_valid_payment(b) for b in parsed) >= 3
    assert any(
        int(r["attributes"]["ApproximateReceiveCount"]) > 1 for r in load("mixed-batch.json")["Records"]
    )


def test_fifo_batch_has_two_message_groups_in_sequence():
    records = load("fifo-batch.json")["Records"]
    assert all(r["eventSourceARN"].endswith(".fifo") for r in records)
    groups = [r["attributes"]["MessageGroupId"] for r in records]
    assert len(set(groups)) == 2
    sequence = [int(r["attributes"]["SequenceNumber"]) for r in records]
    assert sequence == sorted(sequence)
    assert len({r["attributes"]["MessageDeduplicationId"] for r in records}) == len(records)
    assert all(_is_valid_payment(b) for b in bodies("fifo-batch.json"))
