"""simulation.sqs.SimSqs held to moto (server mode), and to AWS's documents where moto differs.

The ``sqs`` fixture runs a test against both: moto through boto3 (time is real: visibilities of
1-2 s) and the simulation (time is a VirtualClock, moved forward at once). Rules moto does not
follow are tested on the simulation alone, each citing the AWS document (the limits table's
source); the ``test_moto_*`` tests pin what moto does instead, so that a moto upgrade that
changes it shows up here.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from random import Random
from typing import Any

import pytest
from botocore.exceptions import ClientError
from payments_drain.adapters.reports import SqsReporter
from payments_drain.adapters.visibility import SqsVisibility
from payments_drain.core import limits

from local.stack.aws import boto3_client
from local.stack.esm import build_record
from simulation.clock import VirtualClock
from simulation.sqs import SimSqs

MAX_VISIBILITY = limits.SQS_MAX_VISIBILITY_S.value
ATTRIBUTES = {"reasonCategory": {"DataType": "String", "StringValue": "validation"}}
ATTRIBUTES_MD5 = "f7b8e75f9fbbe4a42a15996777ad5548"  # as moto computes it (the test asserts both agree)
STANDARD_SYSTEM_ATTRIBUTES = {
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
}
FIFO_SYSTEM_ATTRIBUTES = STANDARD_SYSTEM_ATTRIBUTES | {
    "MessageGroupId",
    "MessageDeduplicationId",
    "SequenceNumber",
}


@dataclass
class Sqs:
    """One SQS to test: a boto3-shaped client and a way to let time pass."""

    name: str  # "moto" or "sim"
    client: Any
    wait: Callable[[float], None]

    def queue(self, fifo: bool = False, **attributes: Any) -> tuple[str, str]:
        """A new queue: (URL, ARN)."""
        name = f"c-{uuid.uuid4().hex[:10]}" + (".fifo" if fifo else "")
        attrs = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in attributes.items()}
        if fifo:
            attrs["FifoQueue"] = "true"
        url = self.client.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        arn = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return url, arn

    def with_dlq(self, max_receive_count: int, fifo: bool = False, **attributes: Any) -> tuple[str, str, str]:
        """A queue redriving to a new dead-letter queue: (URL, ARN, DLQ URL)."""
        dlq_url, dlq_arn = self.queue(fifo=fifo)
        policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
        url, arn = self.queue(fifo=fifo, RedrivePolicy=policy, **attributes)
        return url, arn, dlq_url

    def receive(self, url: str, n: int = 10, **kwargs: Any) -> list[dict]:
        answer = self.client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=n,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
            **kwargs,
        )
        return answer.get("Messages", [])

    def counts(self, url: str) -> tuple[int, int]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        values = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return int(values[names[0]]), int(values[names[1]])


def _sim(seed: int = 20261201) -> Sqs:
    clock = VirtualClock()
    return Sqs("sim", SimSqs(clock, Random(seed)), clock.sleep)


def _moto(endpoint: str) -> Sqs:
    return Sqs("moto", boto3_client("sqs", endpoint, "us-east-1"), time.sleep)


@pytest.fixture(params=["moto", "sim"])
def sqs(request) -> Sqs:
    return _moto(request.getfixturevalue("moto_endpoint")) if request.param == "moto" else _sim()


@pytest.fixture
def sim() -> Sqs:
    return _sim()


@pytest.fixture
def moto(moto_endpoint) -> Sqs:
    return _moto(moto_endpoint)


def _code(error: pytest.ExceptionInfo) -> str:
    return error.value.response["Error"]["Code"]


# ---------------------------------------------------------------------- both: shapes
def test_send_and_receive_shapes(sqs):
    url, _ = sqs.queue()
    sent = sqs.client.send_message(QueueUrl=url, MessageBody="hello", MessageAttributes=ATTRIBUTES)
    sent.pop("ResponseMetadata", None)
    assert set(sent) == {"MessageId", "MD5OfMessageBody", "MD5OfMessageAttributes"}
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"hello").hexdigest()
    assert sent["MD5OfMessageAttributes"] == ATTRIBUTES_MD5

    [message] = sqs.receive(url)
    assert set(message) == {
        "MessageId",
        "ReceiptHandle",
        "MD5OfBody",
        "Body",
        "Attributes",
        "MD5OfMessageAttributes",
        "MessageAttributes",
    }
    assert (message["MessageId"], message["Body"]) == (sent["MessageId"], "hello")
    assert message["MessageAttributes"] == ATTRIBUTES and message["MD5OfMessageAttributes"] == ATTRIBUTES_MD5
    assert set(message["Attributes"]) == STANDARD_SYSTEM_ATTRIBUTES
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert all(v.isdigit() for k, v in message["Attributes"].items() if k != "SenderId")


def test_receive_gives_only_the_attributes_asked_for(sqs):
    url, _ = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=ATTRIBUTES)
    [message] = sqs.client.receive_message(QueueUrl=url, MessageSystemAttributeNames=["SentTimestamp"])[
        "Messages"
    ]
    assert set(message["Attributes"]) == {"SentTimestamp"}
    assert "MessageAttributes" not in message and "MD5OfMessageAttributes" not in message


def test_empty_receive_has_no_messages(sqs):
    url, _ = sqs.queue()
    assert "Messages" not in sqs.client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)


def test_send_batch_answer_shape(sqs):
    url, _ = sqs.queue()
    answer = sqs.client.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "one"},
            {"Id": "b", "MessageBody": "two", "MessageAttributes": ATTRIBUTES},
        ],
    )
    assert answer["Failed"] == []
    first, second = answer["Successful"]
    assert set(first) == {"Id", "MessageId", "MD5OfMessageBody"} and first["Id"] == "a"
    assert set(second) == {"Id", "MessageId", "MD5OfMessageBody", "MD5OfMessageAttributes"}
    assert second["MD5OfMessageAttributes"] == ATTRIBUTES_MD5
    assert sorted(m["Body"] for m in sqs.receive(url)) == ["one", "two"]


BATCH_ENTRY = {
    "send_message_batch": {"MessageBody": "x"},
    "delete_message_batch": {},
    "change_message_visibility_batch": {"VisibilityTimeout": 5},
}


def _too_many_entries(sqs: Sqs, operation: str) -> pytest.ExceptionInfo:
    url, _ = sqs.queue()
    n = limits.SQS_BATCH_ENTRIES.value + 1
    handle = {} if operation == "send_message_batch" else {"ReceiptHandle": "h"}
    entries = [
        {"Id": str(i), **BATCH_ENTRY[operation], **{k: f"{v}{i}" for k, v in handle.items()}}
        for i in range(n)
    ]
    with pytest.raises(ClientError) as error:
        getattr(sqs.client, operation)(QueueUrl=url, Entries=entries)
    assert sqs.counts(url) == (0, 0)
    return error


def test_more_than_10_entries_refuse_the_whole_send_batch(sqs):
    """limits.SQS_BATCH_ENTRIES (quotas-messages.html): the call is refused, nothing is sent."""
    assert limits.SQS_BATCH_ENTRIES.source.endswith("quotas-messages.html")
    error = _too_many_entries(sqs, "send_message_batch")
    assert _code(error) == "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    assert error.value.response["Error"]["QueryErrorCode"] == "TooManyEntriesInBatchRequest"


@pytest.mark.parametrize("operation", ["delete_message_batch", "change_message_visibility_batch"])
def test_sim_more_than_10_entries_refuse_the_whole_batch(sim, operation):
    """limits.SQS_BATCH_ENTRIES (quotas-messages.html; API_DeleteMessageBatch.html and
    API_ChangeMessageVisibilityBatch.html list TooManyEntriesInBatchRequest). moto 5.2 takes any
    number: test_moto_takes_more_than_10_delete_and_visibility_entries."""
    assert _code(_too_many_entries(sim, operation)) == "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"


def test_receive_of_more_than_10_is_refused(sqs):
    url, _ = sqs.queue()
    with pytest.raises(ClientError) as error:
        sqs.client.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert _code(error) == "InvalidParameterValue"


def test_unknown_queue_is_refused(sqs):
    url, _ = sqs.queue()
    with pytest.raises(ClientError) as error:
        sqs.client.send_message(QueueUrl=url + "-gone", MessageBody="x")
    assert _code(error) == "AWS.SimpleQueueService.NonExistentQueue"


def test_delete_batch_answer_shape(sqs):
    url, _ = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    [message] = sqs.receive(url)
    answer = sqs.client.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "ok", "ReceiptHandle": message["ReceiptHandle"]},
            {"Id": "bad", "ReceiptHandle": "bogus"},
        ],
    )
    assert answer["Successful"] == [{"Id": "ok"}]
    [failed] = answer["Failed"]
    assert (failed["Id"], failed["SenderFault"], failed["Code"]) == ("bad", True, "ReceiptHandleIsInvalid")
    assert sqs.counts(url) == (0, 0)


# ---------------------------------------------------------------------- both: visibility
def test_visibility_hides_then_shows_again_with_a_new_handle(sqs):
    url, _ = sqs.queue(VisibilityTimeout=1)
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    [first] = sqs.receive(url)
    assert sqs.receive(url) == [] and sqs.counts(url) == (0, 1)
    sqs.wait(1.2)
    assert sqs.counts(url) == (1, 0)
    [again] = sqs.receive(url)
    assert again["MessageId"] == first["MessageId"]
    assert again["ReceiptHandle"] != first["ReceiptHandle"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert (
        again["Attributes"]["ApproximateFirstReceiveTimestamp"]
        == first["Attributes"]["ApproximateFirstReceiveTimestamp"]
    )


def test_change_visibility_counts_from_now(sqs):
    url, _ = sqs.queue(VisibilityTimeout=1)
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    [message] = sqs.receive(url)
    sqs.wait(0.5)
    sqs.client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=2
    )
    sqs.wait(1.2)  # past the queue's 1 s, within the 2 s counted from the change
    assert sqs.receive(url) == []
    sqs.wait(1.0)
    assert [m["MessageId"] for m in sqs.receive(url)] == [message["MessageId"]]


def test_change_visibility_to_zero_shows_at_once(sqs):
    url, _ = sqs.queue(VisibilityTimeout=60)
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    [message] = sqs.receive(url)
    sqs.client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in sqs.receive(url)] == ["2"]


def test_change_visibility_batch_answer_shape(sqs):
    url, _ = sqs.queue(VisibilityTimeout=1)
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    [message] = sqs.receive(url)
    answer = sqs.client.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "ok", "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 2},
            {"Id": "bad", "ReceiptHandle": "bogus", "VisibilityTimeout": 2},
            {"Id": "big", "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": MAX_VISIBILITY + 1},
        ],
    )
    answer.pop("ResponseMetadata", None)
    assert set(answer) == {"Successful", "Failed"} and answer["Successful"] == [{"Id": "ok"}]
    failed = {f["Id"]: f for f in answer["Failed"]}
    assert set(failed) == {"bad", "big"}
    assert all(
        set(f) == {"Id", "SenderFault", "Code", "Message"} and f["SenderFault"] is True
        for f in failed.values()
    )
    assert failed["bad"]["Code"] == "ReceiptHandleIsInvalid"
    assert failed["big"]["Code"] == "InvalidParameterValue"
    sqs.wait(1.2)
    assert sqs.receive(url) == []  # the 2 s hold took


def test_change_visibility_past_12h_from_the_receive_is_refused(sqs):
    """limits.SQS_MAX_VISIBILITY_S (API_ChangeMessageVisibility.html): 0.5 s after the receive, a
    12 h timeout would end past 12 h from the receive: refused, and the old timeout stays."""
    assert limits.SQS_MAX_VISIBILITY_S.source.endswith("API_ChangeMessageVisibility.html")
    url, _ = sqs.queue(VisibilityTimeout=60)
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    [message] = sqs.receive(url)
    sqs.wait(0.5)
    with pytest.raises(ClientError) as error:
        sqs.client.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=MAX_VISIBILITY
        )
    assert _code(error) == "InvalidParameterValue"
    assert error.value.response["Error"]["Message"] == (
        f"Value {MAX_VISIBILITY} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout "
        f"for the message is beyond the limit [{MAX_VISIBILITY} seconds]"
    )
    assert sqs.counts(url) == (0, 1)


# ---------------------------------------------------------------------- both: redrive
def test_redrive_moves_the_message_at_the_receive_past_max_receive_count(sqs):
    """limits.SQS_REDRIVE (sqs-dead-letter-queues.html): received maxReceiveCount times, then moved
    at the next receive (which gets nothing), with its id, body, attributes and SentTimestamp;
    ApproximateReceiveCount counts "across all queues" (API_ReceiveMessage.html)."""
    url, _, dlq_url = sqs.with_dlq(max_receive_count=2, VisibilityTimeout=1)
    sent = sqs.client.send_message(QueueUrl=url, MessageBody="poison", MessageAttributes=ATTRIBUTES)
    counts = []
    for _ in range(2):
        [message] = sqs.receive(url)
        counts.append(message["Attributes"]["ApproximateReceiveCount"])
        sqs.wait(1.2)
    assert counts == ["1", "2"]
    assert sqs.receive(url) == []
    assert sqs.counts(url) == (0, 0)
    [dead] = sqs.receive(dlq_url)
    assert (dead["MessageId"], dead["Body"], dead["MessageAttributes"]) == (
        sent["MessageId"],
        "poison",
        ATTRIBUTES,
    )
    assert dead["Attributes"]["SentTimestamp"] == message["Attributes"]["SentTimestamp"]
    assert dead["Attributes"]["ApproximateReceiveCount"] == "3"


# ---------------------------------------------------------------------- both: FIFO
def test_fifo_group_order_and_blocking(sqs):
    url, _ = sqs.queue(fifo=True)
    for body, group in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b")]:
        sqs.client.send_message(
            QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body
        )
    [first] = sqs.receive(url, n=1)
    assert first["Body"] == "a1"
    assert set(first["Attributes"]) == FIFO_SYSTEM_ATTRIBUTES
    assert [m["Body"] for m in sqs.receive(url)] == ["b1"]  # group a waits while a1 is in flight
    sqs.client.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    later = sqs.receive(url)
    assert [m["Body"] for m in later] == ["a2", "a3"]  # in order; group b waits for b1


def test_fifo_deduplication(sqs):
    url, _ = sqs.queue(fifo=True)
    for _ in range(2):
        sqs.client.send_message(
            QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="same"
        )
    answer = sqs.client.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "1", "MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "same"}],
    )
    assert [set(s) for s in answer["Successful"]] == [
        {"Id", "MessageId", "MD5OfMessageBody", "SequenceNumber"}
    ]
    assert len(sqs.receive(url)) == 1


def test_fifo_needs_a_group_and_a_deduplication_id(sqs):
    url, _ = sqs.queue(fifo=True)
    with pytest.raises(ClientError):
        sqs.client.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="d")
    with pytest.raises(ClientError) as error:
        sqs.client.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")
    assert _code(error) == "InvalidParameterValue"


# ---------------------------------------------------------------------- both: the real adapters
def test_sqs_visibility_hold(sqs):
    url, arn = sqs.queue(VisibilityTimeout=1)
    sqs.client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(i)} for i in range(2)]
    )
    held, other = sqs.receive(url)
    assert SqsVisibility(sqs.client).hold(arn, {held["ReceiptHandle"]: 2, "bogus": 2}) == 1
    sqs.wait(1.2)
    assert [m["Body"] for m in sqs.receive(url, VisibilityTimeout=60)] == [other["Body"]]
    sqs.wait(1.0)
    assert [m["Body"] for m in sqs.receive(url)] == [held["Body"]]


def test_sqs_visibility_hold_past_12h(sqs):
    """A hold ending past 12 h from the receive: the simulation refuses the entry (a Failed entry
    with InvalidParameterValue), moto refuses the whole ChangeMessageVisibilityBatch call with the
    same code; either way the adapter takes it as "too long" and holds shorter."""
    url, arn = sqs.queue(VisibilityTimeout=1)
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    [message] = sqs.receive(url)
    sqs.wait(0.5)
    failed = SqsVisibility(sqs.client).hold(arn, {message["ReceiptHandle"]: MAX_VISIBILITY})
    assert failed == 0
    sqs.wait(1.0)
    assert sqs.receive(url) == []  # held: half the 12 h fits


def test_sqs_reporter_send(sqs):
    url, _ = sqs.queue()
    report = {
        "messageId": "m-1",
        "paymentKey": "k-1",
        "reason": {"category": "validation", "code": "MISSING_AMOUNT"},
        "payment": {"id": "k-1", "amount": "12.50"},
    }
    assert SqsReporter(url, sqs.client).send([report, {**report, "messageId": "m-2"}]) == set()
    got = sqs.receive(url)
    assert sorted(json.loads(m["Body"])["messageId"] for m in got) == ["m-1", "m-2"]
    assert got[0]["MessageAttributes"] == {
        "reasonCategory": {"DataType": "String", "StringValue": "validation"},
        "reasonCode": {"DataType": "String", "StringValue": "MISSING_AMOUNT"},
    }
    assert SqsReporter(url + "-gone", sqs.client).send([report]) == {"m-1"}


# ---------------------------------------------------------------------- both: Lambda records
@pytest.mark.parametrize("fifo", [False, True])
def test_records_have_the_event_source_mapping_shape(sqs, fifo):
    url, arn = sqs.queue(fifo=fifo)
    extra = {"MessageGroupId": "g", "MessageDeduplicationId": "d"} if fifo else {}
    sqs.client.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=ATTRIBUTES, **extra)
    if sqs.name == "sim":
        [record] = sqs.client.receive_records(url, 10)
    else:
        [record] = [build_record(m, arn, "us-east-1") for m in sqs.receive(url)]
    assert set(record) == {
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
        "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion",
    }  # fmt: skip
    assert set(record["attributes"]) == (FIFO_SYSTEM_ATTRIBUTES if fifo else STANDARD_SYSTEM_ATTRIBUTES)
    assert record["messageAttributes"] == {
        "reasonCategory": {
            "stringValue": "validation",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs",
        arn,
        "us-east-1",
    )
    assert (record["md5OfBody"], record["md5OfMessageAttributes"]) == (
        hashlib.md5(b"x").hexdigest(),
        ATTRIBUTES_MD5,
    )


# ---------------------------------------------------------------------- simulation alone (AWS's documents)
def test_sim_records_are_build_record_of_the_received_messages():
    """receive_records == local/stack/esm.py's build_record over the same receive (same seed)."""
    sides = []
    for _ in range(2):
        sim = _sim(seed=5)
        url, arn = sim.queue()
        binary = {"blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
        for start in (0, 6):
            entries = [
                {"Id": str(i), "MessageBody": f"m{start + i}", "MessageAttributes": {**ATTRIBUTES, **binary}}
                for i in range(6)
            ]
            sim.client.send_message_batch(QueueUrl=url, Entries=entries)
        sides.append((sim, url, arn))
    (a, url_a, arn_a), (b, url_b, _) = sides
    records = a.client.receive_records(url_a, 12)
    messages = b.receive(url_b) + b.receive(url_b, n=2)
    assert len(records) == 12
    assert records == [build_record(m, arn_a, "us-east-1") for m in messages]


def test_sim_visibility_cap_counts_12h_from_each_receive(sim):
    """limits.SQS_MAX_VISIBILITY_S (API_ChangeMessageVisibility.html): extensions may add up to 12 h
    from the receive, not more; a refused change leaves the old timeout; the next receive starts a
    new 12 h. The batch form answers the refusal as a Failed entry (moto fails the whole call)."""
    assert limits.SQS_MAX_VISIBILITY_S.source.endswith("API_ChangeMessageVisibility.html")
    url, _ = sim.queue(VisibilityTimeout=30)
    sim.client.send_message(QueueUrl=url, MessageBody="x")
    [message] = sim.receive(url)
    handle = message["ReceiptHandle"]
    sim.wait(10)
    sim.client.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=6 * 3600)
    sim.wait(6 * 3600 - 10)
    sim.client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=6 * 3600
    )  # ends at 12 h
    sim.wait(5 * 3600)
    answer = sim.client.change_message_visibility_batch(
        QueueUrl=url, Entries=[{"Id": "late", "ReceiptHandle": handle, "VisibilityTimeout": 2 * 3600}]
    )
    assert answer["Successful"] == []
    assert answer["Failed"] == [
        {
            "Id": "late",
            "SenderFault": True,
            "Code": "InvalidParameterValue",
            "Message": "Value 7200 for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout "
            f"for the message is beyond the limit [{MAX_VISIBILITY} seconds]",
        }
    ]
    sim.wait(3600 - 1)
    assert sim.receive(url) == []  # the old timeout: 12 h after the receive
    sim.wait(1)
    [again] = sim.receive(url)
    sim.client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=MAX_VISIBILITY
    )


def test_sim_retention_drops_visible_and_in_flight_messages(sim):
    """limits.SQS_MAX_RETENTION_S (API_SetQueueAttributes.html): past MessageRetentionPeriod from
    SentTimestamp a message is deleted, visible or in flight, and never reaches the DLQ."""
    assert limits.SQS_MAX_RETENTION_S.source.endswith("API_SetQueueAttributes.html")
    assert limits.SQS_MAX_RETENTION_S.past == limits.DROPPED
    url, _, dlq_url = sim.with_dlq(max_receive_count=1, MessageRetentionPeriod=60, VisibilityTimeout=600)
    ids = [sim.client.send_message(QueueUrl=url, MessageBody=b)["MessageId"] for b in ("held", "waiting")]
    [held] = sim.receive(url, n=1)
    sim.wait(59.9)
    assert sim.counts(url) == (1, 1)
    sim.wait(0.1)
    assert sim.counts(url) == (0, 0) and sim.counts(dlq_url) == (0, 0)
    assert sorted((d["message_id"], d["body"], d["state"]) for d in sim.client.dropped) == sorted(
        zip(
            ids,
            ("held", "waiting"),
            ("in_flight", "visible") if held["Body"] == "held" else ("visible", "in_flight"),
        )
    )
    sim.client.delete_message(QueueUrl=url, ReceiptHandle=held["ReceiptHandle"])  # gone: deleting succeeds


def test_sim_retention_default_is_4_days(sim):
    """limits.SQS_DEFAULT_RETENTION_S (API_SetQueueAttributes.html)."""
    url, _ = sim.queue()
    assert sim.client.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])[
        "Attributes"
    ] == {"MessageRetentionPeriod": str(limits.SQS_DEFAULT_RETENTION_S.value)}
    sim.client.send_message(QueueUrl=url, MessageBody="x")
    sim.wait(limits.SQS_DEFAULT_RETENTION_S.value)
    assert sim.counts(url) == (0, 0) and [d["body"] for d in sim.client.dropped] == ["x"]


@pytest.mark.parametrize("fifo", [False, True])
def test_sim_dead_letter_retention(sim, fifo):
    """limits.SQS_REDRIVE (sqs-dead-letter-queues.html) and setting-up-dead-letter-queue-retention.html:
    in a standard queue's DLQ a message's retention still counts from its first SentTimestamp; a
    FIFO queue's message starts again when moved."""
    assert limits.SQS_REDRIVE.source.endswith("sqs-dead-letter-queues.html")
    day = 86_400
    dlq_url, dlq_arn = sim.queue(fifo=fifo, MessageRetentionPeriod=2 * day)
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}
    url, _ = sim.queue(fifo=fifo, RedrivePolicy=policy, VisibilityTimeout=60)
    extra = {"MessageGroupId": "g", "MessageDeduplicationId": "d"} if fifo else {}
    sim.client.send_message(QueueUrl=url, MessageBody="x", **extra)
    sim.wait(day)
    assert len(sim.receive(url)) == 1
    sim.wait(60)
    assert sim.receive(url) == [] and sim.counts(dlq_url) == (1, 0)  # moved at this receive
    [dead] = sim.client.dead_letters(url)
    assert (dead["body"], dead["state"], dead["receive_count"]) == ("x", "visible", 1)
    assert sim.client.messages(dlq_url) == [dead] and sim.client.messages(url) == []
    sim.wait(day - 61)
    assert sim.counts(dlq_url) == (1, 0)  # 2 days minus 1 s after the send
    sim.wait(1)
    assert sim.counts(dlq_url) == ((1, 0) if fifo else (0, 0))
    sim.wait(day + 60)
    assert sim.counts(dlq_url) == (0, 0)
    assert [(d["body"], d["queue"]) for d in sim.client.dropped] == [("x", dlq_url.rsplit("/", 1)[1])]


def test_sim_message_size_counts_body_and_attributes(sim):
    """limits.SQS_MAX_MESSAGE_BYTES (quotas-messages.html): the body and the attributes (name, type,
    value) in UTF-8 bytes, within the queue's MaximumMessageSize; a batch answers each entry,
    and refuses the whole call past the limit in total."""
    assert limits.SQS_MAX_MESSAGE_BYTES.source.endswith("quotas-messages.html")
    url, _ = sim.queue(MaximumMessageSize=1024)
    attribute_bytes = len("reasonCategory") + len("String") + len("validation")
    fits = "x" * (1024 - attribute_bytes)
    sim.client.send_message(QueueUrl=url, MessageBody=fits, MessageAttributes=ATTRIBUTES)
    for body, attributes in [(fits + "x", ATTRIBUTES), ("é" * 513, None)]:
        with pytest.raises(ClientError) as error:
            sim.client.send_message(
                QueueUrl=url, MessageBody=body, **({"MessageAttributes": attributes} if attributes else {})
            )
        assert _code(error) == "InvalidParameterValue"
        assert "Message must be shorter than 1024 bytes" in error.value.response["Error"]["Message"]
    answer = sim.client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "ok", "MessageBody": "x"}, {"Id": "big", "MessageBody": "x" * 1025}]
    )
    assert [s["Id"] for s in answer["Successful"]] == ["ok"]
    assert [(f["Id"], f["Code"]) for f in answer["Failed"]] == [("big", "InvalidParameterValue")]

    big_url, _ = sim.queue()
    half = "x" * (limits.SQS_MAX_MESSAGE_BYTES.value // 2 + 1)
    with pytest.raises(ClientError) as error:
        sim.client.send_message_batch(
            QueueUrl=big_url, Entries=[{"Id": "1", "MessageBody": half}, {"Id": "2", "MessageBody": half}]
        )
    assert _code(error) == "AWS.SimpleQueueService.BatchRequestTooLong"
    assert sim.counts(big_url) == (0, 0)


@pytest.mark.parametrize("fifo", [False, True])
def test_sim_in_flight_limit(sim, fifo):
    """limits.SQS_MAX_IN_FLIGHT (quotas-messages.html): a standard queue answers OverLimit until a
    message is deleted or visible again; a FIFO queue (one group per message here) answers
    nothing, without an error (API_ChangeMessageVisibility.html)."""
    assert limits.SQS_MAX_IN_FLIGHT.source.endswith("quotas-messages.html")
    limit = limits.SQS_MAX_IN_FLIGHT.value
    url, _ = sim.queue(fifo=fifo, VisibilityTimeout=600)
    for start in range(0, limit + 10, 10):
        entries = [{"Id": str(i), "MessageBody": "x"} for i in range(10)]
        if fifo:
            for i, entry in enumerate(entries):
                entry.update(MessageGroupId=str(start + i), MessageDeduplicationId=str(start + i))
        sim.client.send_message_batch(QueueUrl=url, Entries=entries)
    handles = [m["ReceiptHandle"] for _ in range(limit // 10) for m in sim.receive(url)]
    assert len(handles) == limit and sim.counts(url) == (10, limit)
    if fifo:
        assert sim.receive(url) == []
    else:
        with pytest.raises(ClientError) as error:
            sim.receive(url)
        assert _code(error) == "OverLimit"
    sim.client.delete_message(QueueUrl=url, ReceiptHandle=handles[0])
    assert len(sim.receive(url)) == 1


def test_sim_receipt_handles_of_earlier_receives(sim):
    """API_DeleteMessage.html: with an older receive's handle "the request will succeed, but the
    message might not be deleted" (here: never deleted). ChangeMessageVisibility: AWS documents
    nothing for an older handle (refused here: ReceiptHandleIsInvalid), and MessageNotInflight for a
    message no longer in flight. A FIFO queue refuses a handle whose timeout has passed."""
    url, _ = sim.queue(VisibilityTimeout=1)
    sim.client.send_message(QueueUrl=url, MessageBody="x")
    [first] = sim.receive(url)
    sim.wait(1)
    [second] = sim.receive(url)
    sim.client.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    assert sim.counts(url) == (0, 1)
    with pytest.raises(ClientError) as error:
        sim.client.change_message_visibility(
            QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=5
        )
    assert _code(error) == "ReceiptHandleIsInvalid"
    sim.wait(1)
    with pytest.raises(ClientError) as error:
        sim.client.change_message_visibility(
            QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=5
        )
    assert _code(error) == "AWS.SimpleQueueService.MessageNotInflight"
    sim.client.delete_message(
        QueueUrl=url, ReceiptHandle=second["ReceiptHandle"]
    )  # the last handle still deletes
    assert sim.counts(url) == (0, 0)

    fifo_url, _ = sim.queue(fifo=True, VisibilityTimeout=1)
    sim.client.send_message(
        QueueUrl=fifo_url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d"
    )
    [message] = sim.receive(fifo_url)
    sim.wait(1)
    with pytest.raises(ClientError) as error:
        sim.client.delete_message(QueueUrl=fifo_url, ReceiptHandle=message["ReceiptHandle"])
    assert "The receipt handle has expired." in error.value.response["Error"]["Message"]


def test_sim_fifo_deduplication_window(sim):
    """API_SendMessage.html (MessageDeduplicationId): duplicates within 5 minutes are accepted, not
    delivered, even after the first was received and deleted."""
    url, _ = sim.queue(fifo=True, ContentBasedDeduplication="true")
    first = sim.client.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    assert (
        sim.client.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")["MessageId"]
        == first["MessageId"]
    )
    [message] = sim.receive(url)
    sim.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    sim.wait(299)
    sim.client.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    assert sim.counts(url) == (0, 0)
    sim.wait(1)
    assert (
        sim.client.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")["MessageId"]
        != first["MessageId"]
    )
    assert sim.counts(url) == (1, 0)


def test_sim_fifo_sequence_numbers_grow(sim):
    """API_SendMessage.html (SequenceNumber): it grows within a group (moto 5.2 draws it at random)."""
    url, _ = sim.queue(fifo=True)
    numbers = [
        sim.client.send_message(QueueUrl=url, MessageBody=b, MessageGroupId="g", MessageDeduplicationId=b)[
            "SequenceNumber"
        ]
        for b in ("a", "b", "c")
    ]
    assert all(len(n) == 20 for n in numbers) and [int(n) for n in numbers] == sorted(int(n) for n in numbers)


def test_sim_standard_order_is_drawn_from_the_rng():
    """A standard queue may deliver in any order: one drawn from the rng, the same for the same seed."""
    orders = []
    for seed in (1, 1, 2):
        sim = _sim(seed)
        url, _ = sim.queue()
        for start in (0, 10):
            sim.client.send_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(start + i)} for i in range(10)]
            )
        orders.append([int(m["Body"]) for _ in range(2) for m in sim.receive(url)])
    assert orders[0] == orders[1] and orders[0] != orders[2]
    assert sorted(orders[0]) == list(range(20)) and orders[0] != list(range(20))


def test_sim_long_poll_waits_in_virtual_time(sim):
    url, _ = sim.queue()
    start = sim.client.clock.wall()
    assert sim.receive(url, WaitTimeSeconds=5) == []
    assert sim.client.clock.wall() == start + 5


def test_sim_missing_features_are_not_implemented(sim):
    url, _ = sim.queue()
    with pytest.raises(NotImplementedError):
        sim.client.purge_queue(QueueUrl=url)
    with pytest.raises(NotImplementedError):
        sim.client.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=5)
    with pytest.raises(NotImplementedError):
        sim.queue(DelaySeconds=10)
    assert sim.client.meta.endpoint_url == "https://sqs.us-east-1.amazonaws.com"
    assert url == f"https://sqs.us-east-1.amazonaws.com/123456789012/{url.rsplit('/', 1)[1]}"


# ---------------------------------------------------------------------- what moto does instead
def test_moto_counts_the_12h_cap_from_the_send(moto):
    """AWS counts 12 h from the receive (API_ChangeMessageVisibility.html); moto 5.2 from the send,
    and refuses in a batch by failing the whole call. The simulation follows AWS."""
    sim = _sim()
    results = {}
    for side in (moto, sim):
        url, _ = side.queue(VisibilityTimeout=60)
        side.client.send_message(QueueUrl=url, MessageBody="x")
        side.wait(1.5)
        [message] = side.receive(url)
        try:
            side.client.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=MAX_VISIBILITY - 1
            )
            results[side.name] = "accepted"
        except ClientError as error:
            results[side.name] = error.response["Error"]["Code"]
        if side is moto:
            with pytest.raises(ClientError):
                moto.client.change_message_visibility_batch(
                    QueueUrl=url,
                    Entries=[
                        {
                            "Id": "1",
                            "ReceiptHandle": message["ReceiptHandle"],
                            "VisibilityTimeout": MAX_VISIBILITY,
                        }
                    ],
                )
    assert results == {"moto": "InvalidParameterValue", "sim": "accepted"}


def test_moto_leaves_attributes_out_of_the_message_size(moto):
    """AWS counts message attributes in the size (quotas-messages.html); moto counts the body's
    characters alone. The simulation follows AWS (test_sim_message_size_counts_body_and_attributes)."""
    url, _ = moto.queue()
    body = "x" * (limits.SQS_MAX_MESSAGE_BYTES.value - 5)
    moto.client.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=ATTRIBUTES)
    assert moto.counts(url) == (1, 0)


def test_moto_accepts_old_receipt_handles_and_messages_not_in_flight(moto):
    """moto changes the visibility of a message no longer in flight (AWS: MessageNotInflight) and
    deletes with an older receive's handle (AWS: "might not be deleted"; never, in the simulation)."""
    url, _ = moto.queue(VisibilityTimeout=1)
    moto.client.send_message(QueueUrl=url, MessageBody="x")
    [first] = moto.receive(url)
    moto.wait(1.2)
    moto.client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    [second] = moto.receive(url)
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    moto.client.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    assert moto.counts(url) == (0, 0)


@pytest.mark.parametrize("operation", ["delete_message_batch", "change_message_visibility_batch"])
def test_moto_takes_more_than_10_delete_and_visibility_entries(moto, operation):
    """AWS refuses more than 10 entries (limits.SQS_BATCH_ENTRIES); moto 5.2 answers each one."""
    url, _ = moto.queue()
    entries = [{"Id": str(i), "ReceiptHandle": f"h{i}", **BATCH_ENTRY[operation]} for i in range(11)]
    answer = getattr(moto.client, operation)(QueueUrl=url, Entries=entries)
    assert len(answer["Failed"]) == 11
