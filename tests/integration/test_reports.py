"""Failure reports against moto's SQS: each built and encoded on its own, each within its
queue's size limit (moto does not enforce sizes: they are checked here, as SQS counts them)."""

import hashlib
import json
import uuid
from pathlib import Path

import boto3
import pytest
from payments_drain.adapters.reports import REPORT_MAX_BYTES, SqsReporter, encode_report, report_of
from payments_drain.adapters.sqs_batches import NOT_SQS_TEXT, entry_size
from payments_drain.core.messages import parse_record
from payments_drain.tools.replay import read_report, replay_body

from local.hubspot_sandbox import SandboxConfig
from local.stack.template import load_yaml
from tests.twins import CANARY_TOKEN, LambdaContext, import_app, payment_body, sqs_record

ROOT = Path(__file__).resolve().parents[2]
WRITE = "crm.objects.commercepayments.write"
SURROGATE = '{"paymentKey":"k-sur","properties":{"hs_initial_amount":"x","hs_initiated_date":"caf\\ud83d"}}'
NONCHAR = '{"paymentKey":"k-non","properties":{"hs_initial_amount":"x","hs_initiated_date":"\\uffff"}}'
DEEP = '{"paymentKey":"k-deep","properties":' + "[" * 990 + "]" * 990 + "}"
INVALID = json.dumps(payment_body("k-bad", amount="forty"))
QUOTES = '"' * 600_000  # not JSON: reported as the raw string, whose escaping doubles it


def received(url, n):
    sqs, got = boto3.client("sqs"), []
    for _ in range(20):
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        got.extend(answer.get("Messages", []))
        if len(got) >= n:
            break
    return got


def sqs_size(message):
    attributes = {
        k: {"DataType": v["DataType"], "StringValue": v["StringValue"]}
        for k, v in message.get("MessageAttributes", {}).items()
    }
    return entry_size({"MessageBody": message["Body"], "MessageAttributes": attributes})


def test_not_sqs_text_finds_exactly_the_characters_sqs_refuses():
    """SQS's set: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF, every code point."""
    accepted = [(0x9, 0x9), (0xA, 0xA), (0xD, 0xD), (0x20, 0xD7FF), (0xE000, 0xFFFD), (0x10000, 0x10FFFF)]
    refused = [cp for cp in range(0x110000) if NOT_SQS_TEXT.search(chr(cp))]
    assert refused == [cp for cp in range(0x110000) if not any(lo <= cp <= hi for lo, hi in accepted)]


def test_every_report_is_written_whatever_its_neighbours_hold(aws_env):
    url = boto3.client("sqs").create_queue(QueueName=f"reports-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    bodies = {"m-sur": SURROGATE, "m-non": NONCHAR, "m-deep": DEEP, "m-bad": INVALID, "m-big": QUOTES}
    reports = [report_of(parse_record(sqs_record(body, mid)), "req-1") for mid, body in bodies.items()]
    assert SqsReporter(url).send(reports) == set()
    got = {json.loads(m["Body"])["messageId"]: m for m in received(url, len(bodies))}
    assert set(got) == set(bodies)
    assert all(sqs_size(m) <= REPORT_MAX_BYTES for m in got.values())
    # escaped, not altered: the lone surrogate reads back as itself
    assert json.loads(got["m-sur"]["Body"])["payment"]["properties"]["hs_initiated_date"] == "caf\ud83d"
    assert json.loads(got["m-non"]["Body"])["payment"]["properties"]["hs_initiated_date"] == "\uffff"
    assert json.loads(got["m-bad"]["Body"])["payment"] == json.loads(INVALID)
    # too deep to re-encode safely: the raw body as a string, which replays as it came
    assert json.loads(got["m-deep"]["Body"])["payment"] == DEEP
    # and each replays as text SQS accepts, reading back as the payment reported
    for message in got.values():
        report = read_report(message["Body"])
        if report is None:  # only the truncated one is not replayed
            assert json.loads(message["Body"])["paymentTruncated"] is True
            continue
        again = replay_body(report)
        assert not NOT_SQS_TEXT.search(again)
        assert (
            again == report["payment"]
            if isinstance(report["payment"], str)
            else (json.loads(again) == {"paymentKey": report["paymentKey"], **report["payment"]})
        )


def test_a_report_that_would_not_fit_carries_a_truncated_payment_that_can_be_found_again(aws_env):
    url = boto3.client("sqs").create_queue(QueueName=f"reports-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    rejection = parse_record(sqs_record(QUOTES, "m-big"))
    assert len(json.dumps(report_of(rejection, max_bytes=10**9))) > REPORT_MAX_BYTES  # escaping doubled it
    report = report_of(rejection, "req-1")
    assert SqsReporter(url).send([report]) == set()
    (message,) = received(url, 1)
    assert sqs_size(message) <= REPORT_MAX_BYTES
    written = json.loads(message["Body"])
    assert written["paymentTruncated"] is True
    assert written["paymentBytes"] == len(QUOTES.encode())
    assert written["paymentSha256"] == hashlib.sha256(QUOTES.encode()).hexdigest()
    assert QUOTES.startswith(written["payment"]) and len(written["payment"]) > 500_000
    assert written["reason"]["code"] == "INVALID_JSON" and written["paymentKey"] == "m-big"
    assert read_report(message["Body"]) is None  # the replay never sends a truncated body


@pytest.mark.parametrize("limit", [2_000, 10_000, 300_000])
def test_truncation_fits_any_limit_even_when_every_character_is_escaped(limit):
    body = json.dumps({"properties": {"x": "\u0001\ud83d" * 30_000}})  # escapes of 6 and 12 bytes
    report = report_of(parse_record(sqs_record(body, "m1")), max_bytes=limit)
    size = entry_size(
        {
            "MessageBody": encode_report(report),
            "MessageAttributes": {
                "reasonCategory": {"DataType": "String", "StringValue": report["reason"]["category"]},
                "reasonCode": {"DataType": "String", "StringValue": report["reason"]["code"]},
            },
        }
    )
    assert report["paymentTruncated"] is True and limit - 200 < size <= limit


def test_the_report_queue_holds_messages_of_1_mib():
    template = load_yaml((ROOT / "template.yaml").read_text())
    queue = template["Resources"]["FailureReportQueue"]["Properties"]
    assert queue["MaximumMessageSize"] == REPORT_MAX_BYTES == 1_048_576


@pytest.fixture
def handler(deploy, hubspot_sandbox_factory):
    sandbox = hubspot_sandbox_factory(
        SandboxConfig(tokens={CANARY_TOKEN: {"scopes": [WRITE]}}, unique_property="payments_drain_key")
    )  # the template's default
    _, environment = deploy(sandbox.base_url)
    return import_app(ROOT / "functions/drain/app.py").lambda_handler, environment


def test_an_unencodable_body_does_not_keep_its_neighbours_reports_from_being_written(handler):
    lambda_handler, environment = handler
    bodies = {"m-sur": SURROGATE, "m-deep": DEEP, "m-bad": INVALID, "m-big": QUOTES}
    event = {
        "Records": [sqs_record(body, mid) for mid, body in bodies.items()]
        + [sqs_record(payment_body("k-ok"), "m-ok")]
    }
    assert lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=environment["FAILURE_QUEUE_URL"], AttributeNames=["MaximumMessageSize"]
    )
    assert attributes["Attributes"]["MaximumMessageSize"] == str(REPORT_MAX_BYTES)  # the local stack too
    got = received(environment["FAILURE_QUEUE_URL"], len(bodies))
    assert sorted(json.loads(m["Body"])["messageId"] for m in got) == sorted(bodies)
    assert all(sqs_size(m) <= REPORT_MAX_BYTES for m in got)
