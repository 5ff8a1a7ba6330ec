"""Write the sample SQS events in events/ exactly as Lambda delivers them from an SQS event source.

Besides payments sent to the queue as they are, sns-batch.json and eventbridge-batch.json hold
payments that reached the queue through the producers' other channels (docs/messages.md):
an SNS topic the queue subscribes to without raw delivery (the body is SNS's notification JSON, the
payment the text in ``Message``) and an EventBridge rule targeting the queue (the body is the whole
event, the payment in ``detail``).

Deterministic: the same script always writes the same bytes, so the committed JSON can be checked
against it (tests/template/test_events.py does). Run from the repository root:

    python events/generate.py            # rewrite events/*.json
    python events/generate.py --check    # exit 1 if a committed file differs

Every record carries what Lambda sends and Powertools' SqsRecordModel requires: messageId,
receiptHandle, body, attributes (ApproximateReceiveCount, SentTimestamp, SenderId,
ApproximateFirstReceiveTimestamp, and on FIFO queues SequenceNumber, MessageGroupId,
MessageDeduplicationId), messageAttributes, md5OfBody (the real MD5 of the body),
md5OfMessageAttributes (SQS's real digest of the attributes, or null), eventSource,
eventSourceARN and awsRegion.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REGION = "us-east-1"
ACCOUNT = "123456789012"
# The template names the payments queue "${AWS::StackName}-payments"; samconfig's stack is payments-drain.
STANDARD_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:payments-drain-payments"
FIFO_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:payments-drain-payments.fifo"
SENDER_ID = "AROAXQ7EXAMPLE4PRODCR:checkout-service"  # an IAM role id and session name
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:payments"
SNS_SENDER_ID = "AIDAIT2UOQQY3AUEKVGXU"  # SNS's own principal sends the notifications to the queue
EVENTBRIDGE_SENDER_ID = "AIDAJXNJGGKNS7OSV23OI"  # and EventBridge's, the events
NAMESPACE = uuid.UUID("6f1c1f0e-3d55-4a63-9b1e-6a0a5d2f9c11")
BASE_SENT_MS = 1_795_773_600_000  # 2026-11-27T10:00:00Z, the day the sample payments were initiated


def md5_of_body(body: str) -> str:
    return hashlib.md5(body.encode("utf-8")).hexdigest()


def md5_of_message_attributes(attributes: dict[str, dict[str, Any]]) -> str | None:
    """SQS's digest: per attribute, sorted by name, length-prefixed name, type, transport byte, value."""
    if not attributes:
        return None

    def chunk(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    buffer = b""
    for name in sorted(attributes):
        attribute = attributes[name]
        data_type = attribute["dataType"]
        buffer += chunk(name.encode()) + chunk(data_type.encode())
        if data_type.startswith("Binary"):
            buffer += b"\x02" + chunk(base64.b64decode(attribute["binaryValue"]))
        else:
            buffer += b"\x01" + chunk(attribute["stringValue"].encode())
    return hashlib.md5(buffer).hexdigest()


def string_attribute(value: str, data_type: str = "String") -> dict[str, Any]:
    # The shape Lambda uses for message attributes (lists are always present, empty).
    return {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": data_type}


def receipt_handle(seed: str) -> str:
    digest = b"".join(hashlib.sha256(f"{seed}/{i}".encode()).digest() for i in range(6))
    return "AQEB" + base64.b64encode(digest).decode()


def payment(key: str, amount: str, minute: int, currency: str = "EUR", **extra: str) -> dict[str, Any]:
    properties = {
        "hs_initial_amount": amount,
        "hs_initiated_date": f"2026-11-27T10:{minute:02d}:00Z",
        "hs_currency_code": currency,
    }
    properties.update(extra)
    return {"paymentKey": key, "properties": properties}


def contact(contact_id: str) -> list[dict[str, Any]]:
    return [
        {
            "to": {"id": contact_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}],
        }
    ]


def dumps(body: Any) -> str:
    return body if isinstance(body, str) else json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def sns_notification(message: str, seed: str, subject: str | None = None) -> str:
    """The body SNS puts on a subscribed queue without raw delivery: its notification JSON, laid
    out as SNS lays it out, with the SQS spellings SigningCertURL and UnsubscribeURL."""
    message_id = str(uuid.uuid5(NAMESPACE, f"sns/{seed}"))
    notification: dict[str, Any] = {"Type": "Notification", "MessageId": message_id, "TopicArn": TOPIC_ARN}
    if subject is not None:
        notification["Subject"] = subject
    notification.update(
        {
            "Message": message,
            "Timestamp": "2026-11-27T10:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": base64.b64encode(hashlib.sha512(message_id.encode()).digest() * 4).decode(),
            "SigningCertURL": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-"
            f"{hashlib.md5(b'cert').hexdigest()}.pem",
            "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC_ARN}:"
            f"{uuid.uuid5(NAMESPACE, 'subscription')}",
        }
    )
    return json.dumps(notification, indent=2, separators=(",", " : "), ensure_ascii=False)


def eventbridge_event(detail: Any, seed: str, detail_type: str = "Payment") -> dict[str, Any]:
    """The body an EventBridge rule puts on its target queue: the whole event."""
    return {
        "version": "0",
        "id": str(uuid.uuid5(NAMESPACE, f"events/{seed}")),
        "detail-type": detail_type,
        "source": "com.example.checkout",
        "account": ACCOUNT,
        "time": "2026-11-27T10:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    }


def record(
    name: str,
    index: int,
    body: Any,
    *,
    queue_arn: str = STANDARD_QUEUE_ARN,
    receive_count: int = 1,
    message_attributes: dict[str, dict[str, Any]] | None = None,
    fifo: tuple[str, str] | None = None,
    sender_id: str = SENDER_ID,
) -> dict[str, Any]:
    """One SQS record; ``fifo`` is (message group id, deduplication id)."""
    text = dumps(body)
    message_id = str(uuid.uuid5(NAMESPACE, f"{name}/{index}"))
    sent = BASE_SENT_MS + index * 137
    attributes: dict[str, str] = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": str(sent),
        "SenderId": sender_id,
        "ApproximateFirstReceiveTimestamp": str(sent + 1_234),
    }
    if fifo:
        group, dedup = fifo
        attributes["SequenceNumber"] = str(18_896_237_414_417_473_536 + index * 65_536)
        attributes["MessageGroupId"] = group
        attributes["MessageDeduplicationId"] = dedup
    message_attributes = message_attributes or {}
    return {
        "messageId": message_id,
        "receiptHandle": receipt_handle(f"{name}/{index}"),
        "body": text,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfMessageAttributes": md5_of_message_attributes(message_attributes),
        "md5OfBody": md5_of_body(text),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def valid_batch() -> dict[str, Any]:
    producer = {"producer": string_attribute("checkout-service")}
    bodies = [
        {
            **payment(
                "ch_3QxA1001",
                "49.90",
                0,
                hs_payment_method_type="card",
                hs_latest_status="succeeded",
                hs_payment_method_last_4="4242",
                hs_customer_email="ada@example.com",
            ),
            "associations": contact("1234"),
        },
        payment(
            "ch_3QxA1002", "120.00", 1, hs_payment_method_type="sepa", hs_reference_number="INV-2026-0042"
        ),
        {
            **payment(
                "ch_3QxA1003",
                "15",
                2,
                currency="USD",
                hs_processor_type="none",
                hs_internal_comment="Paid at the counter",
            ),
            "associations": [
                {
                    "to": {"id": "5678"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}],
                },
                {
                    "to": {"id": "9012"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 391}],
                },
            ],
        },
        payment(
            "ch_3QxA1004",
            "1999.99",
            3,
            currency="GBP",
            hs_payment_method_type="bacs",
            hs_fees_amount="12.50",
            hs_payout_date="2026-11-30T00:00:00Z",
        ),
        payment(
            "ch_3QxA1005",
            "0.99",
            4,
            hs_payment_method_type="wire_transfer",
            hs_latest_status="processing",
            hs_billing_address_city="Berlin",
            hs_billing_address_country="DE",
        ),
    ]
    return {
        "Records": [record("valid", i, body, message_attributes=producer) for i, body in enumerate(bodies)]
    }


def mixed_batch() -> dict[str, Any]:
    """Valid payments interleaved with every kind of bad message the core must reject alone."""
    good = lambda key, amount, minute: payment(key, amount, minute, hs_payment_method_type="card")  # noqa: E731
    missing_amount = payment("ch_3QxB2002", "1", 11)
    del missing_amount["properties"]["hs_initial_amount"]
    entries: list[tuple[Any, int]] = [
        (good("ch_3QxB2001", "25.00", 10), 1),
        ('{"paymentKey": "ch_3QxB2099", "properties": {"hs_initial_amount": "10.00",', 1),  # malformed JSON
        (missing_amount, 1),  # missing hs_initial_amount
        (payment("ch_3QxB2003", "forty-two", 12), 1),  # non-numeric amount
        ({**good("ch_3QxB2004", "80.00", 13), "associations": contact("2468")}, 2),
        (payment("ch_3QxB2005", "33.00", 14, hs_payment_colour="blue"), 1),  # unknown property
        (payment("ch_3QxB2006", "64.00", 15, currency="EURO"), 1),  # bad currency
        (payment("ch_3QxB2007", "70.00", 16, hs_payment_method_type="crypto"), 1),  # bad enum option
        (good("ch_3QxB2008", "5.55", 17), 4),
    ]
    return {
        "Records": [record("mixed", i, body, receive_count=count) for i, (body, count) in enumerate(entries)]
    }


def fifo_batch() -> dict[str, Any]:
    """A FIFO queue's batch: two message groups (customers), in order within each group."""
    entries = [
        ("customer-1234", payment("ch_3QxC3001", "10.00", 20, hs_latest_status="processing")),
        ("customer-1234", payment("ch_3QxC3002", "10.00", 21, hs_latest_status="succeeded")),
        ("customer-5678", payment("ch_3QxC3003", "250.00", 22, currency="USD", hs_payment_method_type="ach")),
        ("customer-1234", payment("ch_3QxC3004", "7.25", 23, hs_payment_method_type="card")),
        (
            "customer-5678",
            payment("ch_3QxC3005", "99.00", 24, currency="USD", hs_payment_method_type="check"),
        ),
    ]
    return {
        "Records": [
            record("fifo", i, body, queue_arn=FIFO_QUEUE_ARN, fifo=(group, body["paymentKey"]))
            for i, (group, body) in enumerate(entries)
        ]
    }


def sns_batch() -> dict[str, Any]:
    """Payments published to an SNS topic: valid ones (one with a JSON number as amount, one without
    paymentKey: its key is SNS's MessageId), one the drain rejects, and one payment sent directly."""
    keyless = payment("unused", "12.00", 31)
    del keyless["paymentKey"]
    numeric = payment("ch_3QxD4003", "0", 32)
    numeric["properties"]["hs_initial_amount"] = 75.5
    entries: list[tuple[Any, str]] = [
        (
            sns_notification(dumps(payment("ch_3QxD4001", "49.90", 30, hs_payment_method_type="card")), "1"),
            SNS_SENDER_ID,
        ),
        (sns_notification(dumps(keyless), "2", subject="payment"), SNS_SENDER_ID),
        (sns_notification(dumps(numeric), "3"), SNS_SENDER_ID),
        (sns_notification(dumps(payment("ch_3QxD4004", "10.00", 33, currency="EURO")), "4"), SNS_SENDER_ID),
        (payment("ch_3QxD4005", "5.00", 34), SENDER_ID),
    ]
    return {"Records": [record("sns", i, body, sender_id=sender) for i, (body, sender) in enumerate(entries)]}


def eventbridge_batch() -> dict[str, Any]:
    """Payments put on an EventBridge bus and routed to the queue by a rule: valid ones (one with a
    JSON number as amount), one the drain rejects, one SNS-wrapped and one direct payment."""
    numeric = payment("ch_3QxE5002", "0", 41)
    numeric["properties"]["hs_initial_amount"] = 120
    entries: list[tuple[Any, str]] = [
        (
            eventbridge_event(payment("ch_3QxE5001", "19.99", 40, hs_latest_status="succeeded"), "1"),
            EVENTBRIDGE_SENDER_ID,
        ),
        (eventbridge_event(numeric, "2"), EVENTBRIDGE_SENDER_ID),
        (
            eventbridge_event(payment("ch_3QxE5003", "1", 42, hs_payment_method_type="crypto"), "3"),
            EVENTBRIDGE_SENDER_ID,
        ),
        (sns_notification(dumps(payment("ch_3QxE5004", "8.00", 43)), "5"), SNS_SENDER_ID),
        (payment("ch_3QxE5005", "3.00", 44), SENDER_ID),
    ]
    return {
        "Records": [
            record("eventbridge", i, body, sender_id=sender) for i, (body, sender) in enumerate(entries)
        ]
    }


EVENTS = {
    "valid-batch.json": valid_batch,
    "mixed-batch.json": mixed_batch,
    "fifo-batch.json": fifo_batch,
    "sns-batch.json": sns_batch,
    "eventbridge-batch.json": eventbridge_batch,
}


def render(build) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, build in EVENTS.items():
        path = HERE / name
        text = render(build)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python events/generate.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
