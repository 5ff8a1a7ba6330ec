"""The simulated Amazon SQS: standard and FIFO queues, in process, on virtual time.

``SimSqs`` answers the boto3 SQS client calls the drain, the reporter, the producer and the replay
make (same parameters, same answer shapes, ``botocore`` ``ClientError`` for a refused call), plus
``receive_records`` for the simulated event source mapping (the records Lambda hands an
SQS-triggered function, shaped as local/stack/esm.py's ``build_record``). It follows AWS's
documented rules rather than moto's; tests/contract/test_sqs_contract.py holds it to moto where
moto follows AWS, and cites the AWS document where moto does not:

- a received message is hidden until receive time + visibility timeout; every receive counts and
  issues a new receipt handle; ChangeMessageVisibility counts from now, and is refused when the
  message's visibility would end more than 12 h after the receive (``limits.SQS_MAX_VISIBILITY_S``);
- retention (``limits.SQS_MAX_RETENTION_S``): a message older than its queue's retention is
  deleted silently, visible or in flight, and is listed in ``dropped``;
- redrive (``limits.SQS_REDRIVE``): the receive that would exceed maxReceiveCount moves the message
  to the dead-letter queue instead (same id, body, attributes and receive count); a standard
  queue's message keeps its SentTimestamp there (so its retention counts from the first send),
  a FIFO queue's message starts again;
- FIFO: a group is delivered in order and not at all while one of its messages is in flight;
  deduplication for 5 minutes; standard queues deliver in an order drawn from ``rng``;
- in-flight limit (``limits.SQS_MAX_IN_FLIGHT``), message size (``limits.SQS_MAX_MESSAGE_BYTES``
  or the queue's MaximumMessageSize), 10 entries per batch (``limits.SQS_BATCH_ENTRIES``).

Deterministic: time only from ``clock.wall()`` (a long poll waits with ``clock.sleep``), randomness
only from ``rng``, no threads. Anything else raises ``NotImplementedError``.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import itertools
import json
import re
import struct
import uuid
from dataclasses import dataclass, field
from random import Random
from types import SimpleNamespace
from typing import Any

from botocore.exceptions import ClientError
from payments_drain.core import limits

REGION = "us-east-1"
ACCOUNT = "123456789012"
ENDPOINT = f"https://sqs.{REGION}.amazonaws.com"
SENDER_ID = "AIDAIT2UOQQY3AUEKVGXU"  # any IAM user id will do: moto's, so both answer alike
RECEIVE_MAX = 10  # ReceiveMessage MaxNumberOfMessages (API_ReceiveMessage.html: 1 to 10)
MAX_MESSAGE_ATTRIBUTES = 10  # quotas-messages.html: up to 10 metadata attributes
DEDUP_WINDOW_S = 300  # API_SendMessage.html MessageDeduplicationId: the 5-minute interval
MIN_RETENTION_S = 60  # API_SetQueueAttributes.html MessageRetentionPeriod: 60 to 1,209,600
MAX_RECEIVE_COUNT = 1000  # sqs-dead-letter-queues.html: maxReceiveCount 1 to 1,000
LONG_POLL_STEP_S = 1.0  # a long poll looks again after this much virtual time

# What a message may contain (API_SendMessage.html): #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF.
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BATCH_ID = re.compile(r"^[\w-]{1,80}$")
_SYSTEM_ATTRIBUTES = (  # as Lambda orders them in a record (local/stack/esm.py)
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
)
# A refused call's code as boto3 shows it: SQS's JSON protocol is query-compatible, and these
# errors keep their old Query API names (API_ChangeMessageVisibilityBatch.html, Query version;
# moto answers the same). The others are named as in the JSON API. A batch's Failed entries use
# the plain names.
_QUERY_CODES = {
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "EmptyBatchRequest": "AWS.SimpleQueueService.EmptyBatchRequest",
    "BatchEntryIdsNotDistinct": "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "InvalidBatchEntryId": "AWS.SimpleQueueService.InvalidBatchEntryId",
    "BatchRequestTooLong": "AWS.SimpleQueueService.BatchRequestTooLong",
    "MessageNotInflight": "AWS.SimpleQueueService.MessageNotInflight",
}
# The queue attributes create_queue takes: simulated, or with no effect on delivery (encryption,
# who may send or redrive into the queue). DelaySeconds and ReceiveMessageWaitTimeSeconds: 0 only.
_QUEUE_ATTRIBUTES = {
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "MaximumMessageSize",
    "RedrivePolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "RedriveAllowPolicy",
    "Policy",
}


class _Pool:
    """A set of message ids with O(1) add, discard and a uniform random pick (list + positions)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.at: dict[str, int] = {}

    def add(self, item: str) -> None:
        if item not in self.at:
            self.at[item] = len(self.items)
            self.items.append(item)

    def discard(self, item: str) -> None:
        i = self.at.pop(item, None)
        if i is not None:
            last = self.items.pop()
            if last != item:
                self.items[i], self.at[last] = last, i

    def pick(self, rng: Random) -> str:
        return self.items[rng.randrange(len(self.items))]

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: object) -> bool:
        return item in self.at


class Refused(Exception):
    """One refused request or batch entry: the plain error code and AWS's message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message

    def client_error(self, operation: str) -> ClientError:
        error = {"Code": _QUERY_CODES.get(self.code, self.code), "Message": self.message}
        error.update({"QueryErrorCode": self.code, "Type": "Sender"})
        return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)

    def failed(self, entry_id: str) -> dict[str, Any]:
        return {"Id": entry_id, "SenderFault": True, "Code": self.code, "Message": self.message}


def _invalid(name: str, value: Any, reason: str) -> Refused:
    return Refused(
        "InvalidParameterValue", f"Value {value} for parameter {name} is invalid. Reason: {reason}"
    )


@dataclass
class SimMessage:
    message_id: str
    body: str
    attributes: dict[str, dict[str, Any]]  # message attributes, as sent
    sent_ms: int
    seq: int  # send order (FIFO order)
    group_id: str | None = None
    dedup_id: str | None = None
    sequence_number: str | None = None
    receive_count: int = 0
    first_receive_ms: int | None = None
    received_at: float | None = None  # the last receive (the 12 h visibility cap counts from it)
    visible_at: float = 0.0
    handle: str | None = None  # the last receive's receipt handle


@dataclass
class SimQueue:
    name: str
    url: str
    arn: str
    fifo: bool
    visibility_timeout: int
    retention_s: int
    max_message_bytes: int
    content_dedup: bool
    redrive: tuple[str, int] | None  # (dead-letter queue ARN, maxReceiveCount)
    attributes: dict[str, str]  # as created, for get_queue_attributes
    messages: dict[str, SimMessage] = field(default_factory=dict)  # stored: visible or in flight
    visible: _Pool = field(default_factory=_Pool)
    in_flight: set[str] = field(default_factory=set)
    # FIFO: each group's stored message ids in order, its messages in flight, and the groups that
    # may deliver (stored messages, none in flight) in the order they became so.
    groups: dict[str, dict[str, None]] = field(default_factory=dict)
    group_in_flight: dict[str, int] = field(default_factory=dict)
    ready: dict[str, None] = field(default_factory=dict)
    due: list[tuple[float, int, str]] = field(default_factory=list)  # heap: (visible_at, n, id)
    expiry: list[tuple[float, int, str]] = field(default_factory=list)  # heap: (expires at, n, id)
    # FIFO deduplication id -> (when sent, message id, sequence number)
    dedup: dict[str, tuple[float, str, str | None]] = field(default_factory=dict)


class SimSqs:
    def __init__(self, clock: Any, rng: Random) -> None:
        self.clock = clock
        self.rng = rng
        self.meta = SimpleNamespace(endpoint_url=ENDPOINT, region_name=REGION)
        self.queues: dict[str, SimQueue] = {}  # by URL
        self.dropped: list[dict[str, Any]] = []  # deleted by retention: the losses to count
        self._n = 0  # tie-breaker and send order

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotImplementedError(f"SimSqs does not simulate {name}")

    # ------------------------------------------------------------------ queues
    def create_queue(self, QueueName: str, Attributes: dict[str, str] | None = None, **kwargs: Any) -> dict:
        if kwargs:
            raise NotImplementedError(f"create_queue with {sorted(kwargs)}")
        attributes = {k: str(v) for k, v in (Attributes or {}).items()}
        url = f"{ENDPOINT}/{ACCOUNT}/{QueueName}"
        if url in self.queues:
            if self.queues[url].attributes != attributes:
                raise Refused(
                    "QueueAlreadyExists",
                    "A queue already exists with the same name and a different value for attribute(s)",
                ).client_error("CreateQueue")
            return {"QueueUrl": url}
        try:
            queue = self._new_queue(QueueName, url, attributes)
        except Refused as refused:
            raise refused.client_error("CreateQueue") from None
        self.queues[url] = queue
        return {"QueueUrl": url}

    def _new_queue(self, name: str, url: str, attributes: dict[str, str]) -> SimQueue:
        unknown = set(attributes) - _QUEUE_ATTRIBUTES
        if unknown:
            raise NotImplementedError(f"queue attributes {sorted(unknown)}")
        if (
            attributes.get("DelaySeconds", "0") != "0"
            or attributes.get("ReceiveMessageWaitTimeSeconds", "0") != "0"
        ):
            raise NotImplementedError("delay queues and a queue-level long poll")
        fifo = attributes.get("FifoQueue", "false").lower() == "true"
        if fifo != name.endswith(".fifo"):
            raise Refused(
                "InvalidParameterValue",
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.",
            )
        visibility = self._int_attribute(
            attributes, "VisibilityTimeout", 30, 0, limits.SQS_MAX_VISIBILITY_S.value
        )
        retention = self._int_attribute(
            attributes,
            "MessageRetentionPeriod",
            limits.SQS_DEFAULT_RETENTION_S.value,
            MIN_RETENTION_S,
            limits.SQS_MAX_RETENTION_S.value,
        )
        size = self._int_attribute(
            attributes,
            "MaximumMessageSize",
            limits.SQS_MAX_MESSAGE_BYTES.value,
            1024,
            limits.SQS_MAX_MESSAGE_BYTES.value,
        )
        redrive = None
        if attributes.get("RedrivePolicy"):
            policy = json.loads(attributes["RedrivePolicy"])
            target, count = policy.get("deadLetterTargetArn"), int(policy.get("maxReceiveCount", 0))
            if self._by_arn(target) is None or not 1 <= count <= MAX_RECEIVE_COUNT:
                raise Refused(
                    "InvalidParameterValue",
                    f"Value {attributes['RedrivePolicy']} for parameter RedrivePolicy is invalid.",
                )
            if self._by_arn(target).fifo != fifo:
                raise Refused(
                    "InvalidParameterValue",
                    "The dead-letter queue of a FIFO queue must be a FIFO queue (and of a standard queue, standard).",
                )
            redrive = (target, count)
        return SimQueue(
            name=name,
            url=url,
            arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            fifo=fifo,
            visibility_timeout=visibility,
            retention_s=retention,
            max_message_bytes=size,
            content_dedup=attributes.get("ContentBasedDeduplication", "false").lower() == "true",
            redrive=redrive,
            attributes=attributes,
        )

    @staticmethod
    def _int_attribute(attributes: dict[str, str], name: str, default: int, low: int, high: int) -> int:
        value = int(attributes.get(name, default))
        if not low <= value <= high:
            raise Refused("InvalidAttributeValue", f"Invalid value for the parameter {name}.")
        return value

    def get_queue_url(self, QueueName: str) -> dict:
        url = f"{ENDPOINT}/{ACCOUNT}/{QueueName}"
        self._queue(url, "GetQueueUrl")
        return {"QueueUrl": url}

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str] | None = None) -> dict:
        queue = self._queue(QueueUrl, "GetQueueAttributes")
        values = {
            "ApproximateNumberOfMessages": len(queue.visible),
            "ApproximateNumberOfMessagesNotVisible": len(queue.in_flight),
            "ApproximateNumberOfMessagesDelayed": 0,
            "DelaySeconds": 0,
            "MaximumMessageSize": queue.max_message_bytes,
            "MessageRetentionPeriod": queue.retention_s,
            "QueueArn": queue.arn,
            "ReceiveMessageWaitTimeSeconds": 0,
            "VisibilityTimeout": queue.visibility_timeout,
        }
        if queue.redrive:
            values["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": queue.redrive[0], "maxReceiveCount": queue.redrive[1]}
            )
        if queue.fifo:
            values.update(FifoQueue="true", ContentBasedDeduplication=str(queue.content_dedup).lower())
        names = AttributeNames or []
        if "All" not in names:
            unknown = [n for n in names if n not in values]
            if unknown:
                raise Refused("InvalidAttributeName", f"Unknown Attribute {unknown[0]}.").client_error(
                    "GetQueueAttributes"
                )
            values = {n: values[n] for n in names}
        return {"Attributes": {k: str(v) for k, v in values.items()}} if values else {}

    # ------------------------------------------------------------------ sending
    def send_message(self, QueueUrl: str, MessageBody: str, **kwargs: Any) -> dict:
        queue = self._queue(QueueUrl, "SendMessage")
        try:
            return self._send(queue, MessageBody, **kwargs)
        except Refused as refused:
            raise refused.client_error("SendMessage") from None

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict:
        queue = self._queue(QueueUrl, "SendMessageBatch")
        self._check_batch(Entries, "SendMessageBatch")
        total = sum(_size(e["MessageBody"], e.get("MessageAttributes")) for e in Entries)
        if total > limits.SQS_MAX_MESSAGE_BYTES.value:
            message = f"Batch requests cannot be longer than {limits.SQS_MAX_MESSAGE_BYTES.value} bytes. You have sent {total} bytes."
            raise Refused("BatchRequestTooLong", message).client_error("SendMessageBatch")
        answer: dict[str, list] = {"Successful": [], "Failed": []}
        for entry in Entries:  # each entry is accepted or refused on its own (API_SendMessageBatch.html)
            fields = {k: v for k, v in entry.items() if k not in ("Id", "MessageBody")}
            try:
                sent = self._send(queue, entry["MessageBody"], **fields)
            except Refused as refused:
                answer["Failed"].append(refused.failed(entry["Id"]))
                continue
            answer["Successful"].append({"Id": entry["Id"], **sent})
        return answer

    def _send(
        self,
        queue: SimQueue,
        body: str,
        MessageAttributes: dict[str, dict[str, Any]] | None = None,
        DelaySeconds: int = 0,
        MessageGroupId: str | None = None,
        MessageDeduplicationId: str | None = None,
        **kwargs: Any,
    ) -> dict:
        if kwargs:
            raise NotImplementedError(f"send with {sorted(kwargs)}")
        if DelaySeconds:
            raise NotImplementedError("DelaySeconds (delayed messages)")
        if not queue.fifo and (MessageGroupId or MessageDeduplicationId):
            raise NotImplementedError("MessageGroupId or MessageDeduplicationId on a standard queue")
        attributes = MessageAttributes or {}
        self._check_content(queue, body, attributes)
        now = self.clock.wall()
        self._n += 1
        message = SimMessage(self._id(), body, attributes, int(now * 1000), self._n)
        if queue.fifo:
            if not MessageGroupId:
                raise Refused("MissingParameter", "The request must contain the parameter MessageGroupId.")
            if not MessageDeduplicationId and not queue.content_dedup:
                raise Refused(
                    "InvalidParameterValue",
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                )
            dedup = MessageDeduplicationId or hashlib.sha256(body.encode()).hexdigest()
            earlier = queue.dedup.get(dedup)
            if earlier and now - earlier[0] < DEDUP_WINDOW_S:  # accepted, not delivered again
                return _sent(earlier[1], body, attributes, earlier[2])
            message.group_id, message.dedup_id = MessageGroupId, dedup
            message.sequence_number = str(10**19 + self._n)  # 20 digits, growing (a FIFO queue's)
            queue.dedup[dedup] = (now, message.message_id, message.sequence_number)
        self._store(queue, message, expires_at=now + queue.retention_s)
        return _sent(message.message_id, body, attributes, message.sequence_number)

    def _check_content(self, queue: SimQueue, body: str, attributes: dict[str, dict[str, Any]]) -> None:
        if not body:
            raise Refused("MissingParameter", "The request must contain the parameter MessageBody.")
        if len(attributes) > MAX_MESSAGE_ATTRIBUTES:
            raise Refused(
                "InvalidParameterValue",
                f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum [{MAX_MESSAGE_ATTRIBUTES}].",
            )
        for name, value in attributes.items():
            if set(value) - {"DataType", "StringValue", "BinaryValue"}:
                raise NotImplementedError("list message attribute values (reserved by SQS)")
            if not value.get("DataType") or ("StringValue" in value) == ("BinaryValue" in value):
                raise Refused(
                    "InvalidParameterValue",
                    f"The message attribute '{name}' must contain exactly one of StringValue or BinaryValue and a DataType.",
                )
        texts = [body] + [str(v.get("StringValue", "")) for v in attributes.values()]
        if any(_NOT_SQS_TEXT.search(text) for text in texts):
            raise Refused(
                "InvalidMessageContents",
                "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
            )
        if _size(body, attributes) > queue.max_message_bytes:  # body and attributes together
            message = f"One or more parameters are invalid. Reason: Message must be shorter than {queue.max_message_bytes} bytes."
            raise Refused("InvalidParameterValue", message)

    def _store(self, queue: SimQueue, message: SimMessage, expires_at: float) -> None:
        queue.messages[message.message_id] = message
        queue.visible.add(message.message_id)
        if queue.fifo:
            queue.groups.setdefault(message.group_id, {})[message.message_id] = None
            self._refresh(queue, message.group_id)
        self._n += 1
        heapq.heappush(queue.expiry, (expires_at, self._n, message.message_id))

    # ------------------------------------------------------------------ receiving
    def receive_message(
        self,
        QueueUrl: str,
        MaxNumberOfMessages: int = 1,
        VisibilityTimeout: int | None = None,
        WaitTimeSeconds: int = 0,
        AttributeNames: list[str] | None = None,
        MessageSystemAttributeNames: list[str] | None = None,
        MessageAttributeNames: list[str] | None = None,
        **kwargs: Any,
    ) -> dict:
        if kwargs:
            raise NotImplementedError(f"receive_message with {sorted(kwargs)}")
        queue = self._queue(QueueUrl, "ReceiveMessage")
        try:
            if not 1 <= MaxNumberOfMessages <= RECEIVE_MAX:
                raise _invalid(
                    "MaxNumberOfMessages",
                    MaxNumberOfMessages,
                    f"must be between 1 and {RECEIVE_MAX}, if provided.",
                )
            timeout = queue.visibility_timeout if VisibilityTimeout is None else VisibilityTimeout
            if not 0 <= timeout <= limits.SQS_MAX_VISIBILITY_S.value:
                raise _invalid(
                    "VisibilityTimeout",
                    timeout,
                    f"Must be between 0 and {limits.SQS_MAX_VISIBILITY_S.value}, if provided.",
                )
            if not 0 <= WaitTimeSeconds <= 20:
                raise _invalid("WaitTimeSeconds", WaitTimeSeconds, "Must be >= 0 and <= 20, if provided.")
            deadline = self.clock.wall() + WaitTimeSeconds
            taken = self._take(queue, MaxNumberOfMessages, timeout)
            while not taken and self.clock.wall() < deadline:  # long poll: look again as time passes
                self.clock.sleep(min(LONG_POLL_STEP_S, deadline - self.clock.wall()))
                taken = self._take(queue, MaxNumberOfMessages, timeout)
        except Refused as refused:
            raise refused.client_error("ReceiveMessage") from None
        system = set(AttributeNames or []) | set(MessageSystemAttributeNames or [])
        messages = [_received(m, system, MessageAttributeNames or []) for m in taken]
        return {"Messages": messages} if messages else {}

    def _take(self, queue: SimQueue, count: int, timeout: int) -> list[SimMessage]:
        """Receive up to ``count`` visible messages: redrive, hide, count, new handles."""
        self._tick(queue)
        room = limits.SQS_MAX_IN_FLIGHT.value - len(queue.in_flight)
        if room <= 0:
            # Standard queue: OverLimit. FIFO queue: an empty answer, no error (API_ChangeMessageVisibility.html).
            if queue.fifo:
                return []
            raise Refused(
                "OverLimit", f"Too many messages in flight: the limit is {limits.SQS_MAX_IN_FLIGHT.value}."
            )
        count = min(count, room)
        taken: list[SimMessage] = []
        for message in self._candidates(queue):
            if len(taken) == count:
                break
            if queue.redrive and message.receive_count >= queue.redrive[1]:
                self._redrive(queue, message)  # this receive would exceed maxReceiveCount
                continue
            now = self.clock.wall()
            message.receive_count += 1
            message.first_receive_ms = message.first_receive_ms or int(now * 1000)
            message.received_at = now
            message.handle = f"{message.message_id}:{message.receive_count}:{self.rng.getrandbits(64):016x}"
            self._set_in_flight(queue, message, True)
            self._hide(queue, message, now + timeout)
            taken.append(message)
        return taken

    def _candidates(self, queue: SimQueue):
        """Visible messages in delivery order: a standard queue's drawn from ``rng`` (any order
        is allowed); a FIFO queue's in send order, skipping groups with a message in flight."""
        # The caller takes or redrives each message it is given: it leaves ``visible`` (and a
        # FIFO group with a message taken leaves ``ready``; the rest of its head comes along).
        if queue.fifo:
            while queue.ready:
                head = list(itertools.islice(queue.groups[next(iter(queue.ready))], RECEIVE_MAX))
                yield from (queue.messages[i] for i in head if i in queue.visible)
            return
        while queue.visible:
            yield queue.messages[queue.visible.pick(self.rng)]

    def _redrive(self, queue: SimQueue, message: SimMessage) -> None:
        target = self._by_arn(queue.redrive[0])
        self._forget(queue, message.message_id)
        message.handle, message.received_at, message.visible_at = None, None, 0.0
        # sqs-dead-letter-queues.html (setting-up-dead-letter-queue-retention.html): a standard
        # queue's message keeps its enqueue timestamp; a FIFO queue's is reset by the move.
        now = self.clock.wall()
        if target.fifo:
            message.sent_ms = int(now * 1000)
        self._store(target, message, expires_at=message.sent_ms / 1000 + target.retention_s)
        self._tick(target)

    def receive_records(self, queue_url: str, max_messages: int) -> list[dict[str, Any]]:
        """What Lambda's SQS poller hands the function: up to ``max_messages`` records (received
        10 at a time with the queue's visibility timeout), shaped as an SQS event's ``Records``."""
        queue = self._queue(queue_url, "ReceiveMessage")
        records: list[dict[str, Any]] = []
        while len(records) < max_messages:
            got = self.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(RECEIVE_MAX, max_messages - len(records)),
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            records.extend(_record(m, queue.arn) for m in got)
            if not got:
                break
        return records

    # ------------------------------------------------------------------ deleting, hiding
    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> dict:
        queue = self._queue(QueueUrl, "DeleteMessage")
        try:
            self._delete(queue, ReceiptHandle)
        except Refused as refused:
            raise refused.client_error("DeleteMessage") from None
        return {}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict:
        queue = self._queue(QueueUrl, "DeleteMessageBatch")
        self._check_batch(Entries, "DeleteMessageBatch")
        return self._each(Entries, lambda e: self._delete(queue, e["ReceiptHandle"]))

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> dict:
        queue = self._queue(QueueUrl, "ChangeMessageVisibility")
        try:
            self._change(queue, ReceiptHandle, VisibilityTimeout)
        except Refused as refused:
            raise refused.client_error("ChangeMessageVisibility") from None
        return {}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict:
        queue = self._queue(QueueUrl, "ChangeMessageVisibilityBatch")
        self._check_batch(Entries, "ChangeMessageVisibilityBatch")
        return self._each(
            Entries, lambda e: self._change(queue, e["ReceiptHandle"], e.get("VisibilityTimeout", 0))
        )

    def _delete(self, queue: SimQueue, handle: str) -> None:
        message, current = self._by_handle(queue, handle)
        if message is None:
            return  # already deleted (or dropped, or moved): deleting again succeeds
        if queue.fifo and (not current or message.visible_at <= self.clock.wall()):
            # A FIFO queue refuses a handle whose visibility timeout has passed (the AWS SDK
            # team, aws/aws-sdk-js#1279 and #1750; the message AWS sends).
            raise _invalid("ReceiptHandle", handle, "The receipt handle has expired.")
        if current:
            self._forget(queue, message.message_id)
        # An older handle: "the request will succeed, but the message might not be deleted"
        # (API_DeleteMessage.html): here it never is, the stricter reading.

    def _change(self, queue: SimQueue, handle: str, timeout: int) -> None:
        cap = limits.SQS_MAX_VISIBILITY_S.value
        if not 0 <= timeout <= cap:
            raise _invalid("VisibilityTimeout", timeout, f"Must be between 0 and {cap}, if provided.")
        message, current = self._by_handle(queue, handle)
        if message is None or not current:
            # AWS documents nothing for a deleted message or an older receive's handle; refused
            # here (the stricter choice): the message keeps the visibility its last receive has.
            raise Refused(
                "ReceiptHandleIsInvalid",
                f'The input receipt handle "{handle}" is not a valid receipt handle.',
            )
        now = self.clock.wall()
        if message.message_id not in queue.in_flight:
            raise Refused(
                "MessageNotInflight",
                "Message does not exist or is not available for visibility timeout change.",
            )
        if now - message.received_at + timeout > cap:
            # API_ChangeMessageVisibility.html: refused, not shortened; the old timeout stays.
            # Code and message as AWS sends them (localstack#3956, gchq/sleeper#6507, moto).
            raise _invalid(
                "VisibilityTimeout",
                timeout,
                f"Total VisibilityTimeout for the message is beyond the limit [{cap} seconds]",
            )
        self._hide(queue, message, now + timeout)
        self._tick(queue)  # a timeout of 0 shows the message at once

    # ------------------------------------------------------------------ inspection
    def queue_url(self, name_or_arn: str) -> str:
        queue = self._by_arn(name_or_arn) or self.queues.get(f"{ENDPOINT}/{ACCOUNT}/{name_or_arn}")
        if queue is None:
            raise KeyError(name_or_arn)
        return queue.url

    def messages(self, queue_url: str) -> list[dict[str, Any]]:
        """Every stored message (visible or in flight), in send order, as plain data."""
        queue = self._queue(queue_url, "inspect")
        return [
            {
                "message_id": m.message_id,
                "body": m.body,
                "state": "in_flight" if m.message_id in queue.in_flight else "visible",
                "receive_count": m.receive_count,
                "sent_timestamp": m.sent_ms,
                "visible_at": m.visible_at,
                "group_id": m.group_id,
            }
            for m in sorted(queue.messages.values(), key=lambda m: m.seq)
        ]

    def dead_letters(self, queue_url: str) -> list[dict[str, Any]]:
        """The messages in ``queue_url``'s dead-letter queue."""
        queue = self._queue(queue_url, "inspect")
        if queue.redrive is None:
            raise ValueError(f"{queue.name} has no redrive policy")
        return self.messages(self._by_arn(queue.redrive[0]).url)

    def counts(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight)."""
        queue = self._queue(queue_url, "inspect")
        return len(queue.visible), len(queue.in_flight)

    # ------------------------------------------------------------------ internals
    def _queue(self, url: str, operation: str) -> SimQueue:
        queue = self.queues.get(url)
        if queue is None:
            raise Refused("QueueDoesNotExist", "The specified queue does not exist.").client_error(operation)
        self._tick(queue)
        return queue

    def _by_arn(self, arn: str | None) -> SimQueue | None:
        return next((q for q in self.queues.values() if q.arn == arn), None)

    def _tick(self, queue: SimQueue) -> None:
        """Apply what time did: retention drops, and ended visibility timeouts show messages."""
        now = self.clock.wall()
        while queue.expiry and queue.expiry[0][0] <= now:
            _, _, message_id = heapq.heappop(queue.expiry)
            message = queue.messages.get(message_id)
            if message is not None:
                state = "in_flight" if message_id in queue.in_flight else "visible"
                self._forget(queue, message_id)
                self.dropped.append(
                    {
                        "queue": queue.name,
                        "message_id": message_id,
                        "body": message.body,
                        "state": state,
                        "at": now,
                    }
                )
        while queue.due and queue.due[0][0] <= now:
            at, _, message_id = heapq.heappop(queue.due)
            message = queue.messages.get(message_id)
            if message is not None and message.visible_at == at and message_id in queue.in_flight:
                self._set_in_flight(queue, message, False)

    def _hide(self, queue: SimQueue, message: SimMessage, until: float) -> None:
        message.visible_at = until
        self._n += 1
        heapq.heappush(queue.due, (until, self._n, message.message_id))

    def _set_in_flight(self, queue: SimQueue, message: SimMessage, in_flight: bool) -> None:
        if in_flight:
            queue.visible.discard(message.message_id)
            queue.in_flight.add(message.message_id)
        else:
            queue.in_flight.discard(message.message_id)
            queue.visible.add(message.message_id)
        if queue.fifo:
            group = message.group_id
            queue.group_in_flight[group] = queue.group_in_flight.get(group, 0) + (1 if in_flight else -1)
            self._refresh(queue, group)

    def _forget(self, queue: SimQueue, message_id: str) -> None:
        message = queue.messages.get(message_id)
        if message is None:
            return
        if message_id in queue.in_flight:
            self._set_in_flight(queue, message, False)
        del queue.messages[message_id]
        queue.visible.discard(message_id)
        if queue.fifo:
            members = queue.groups[message.group_id]
            del members[message_id]
            if not members:
                del queue.groups[message.group_id]
            self._refresh(queue, message.group_id)

    @staticmethod
    def _refresh(queue: SimQueue, group: str) -> None:
        """A FIFO group may deliver when it has messages and none of them is in flight."""
        if queue.groups.get(group) and not queue.group_in_flight.get(group):
            queue.ready.setdefault(group)
        else:
            queue.ready.pop(group, None)
            if not queue.group_in_flight.get(group):
                queue.group_in_flight.pop(group, None)

    def _by_handle(self, queue: SimQueue, handle: str) -> tuple[SimMessage | None, bool]:
        """The message a receipt handle names (None once gone) and whether it is its last receive's."""
        parts = handle.split(":") if isinstance(handle, str) else []
        if len(parts) != 3 or not parts[1].isdigit():
            raise Refused(
                "ReceiptHandleIsInvalid",
                f'The input receipt handle "{handle}" is not a valid receipt handle.',
            )
        message = queue.messages.get(parts[0])
        return message, message is not None and message.handle == handle

    def _check_batch(self, entries: list[dict[str, Any]], operation: str) -> None:
        ids = [e.get("Id") for e in entries]
        if not entries:
            refused = Refused("EmptyBatchRequest", "There should be at least one entry in the request.")
        elif len(entries) > limits.SQS_BATCH_ENTRIES.value:
            refused = Refused(
                "TooManyEntriesInBatchRequest",
                f"Maximum number of entries per request are {limits.SQS_BATCH_ENTRIES.value}. You have sent {len(entries)}.",
            )
        elif not all(isinstance(i, str) and _BATCH_ID.match(i) for i in ids):
            refused = Refused(
                "InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            )
        elif len(set(ids)) != len(ids):
            refused = Refused(
                "BatchEntryIdsNotDistinct", f"Id {next(i for i in ids if ids.count(i) > 1)} repeated."
            )
        else:
            return
        raise refused.client_error(operation)

    @staticmethod
    def _each(entries: list[dict[str, Any]], action) -> dict:
        answer: dict[str, list] = {"Successful": [], "Failed": []}
        for entry in entries:
            try:
                action(entry)
            except Refused as refused:
                answer["Failed"].append(refused.failed(entry["Id"]))
            else:
                answer["Successful"].append({"Id": entry["Id"]})
        return answer

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


# ---------------------------------------------------------------------- shapes
def _size(body: str, attributes: dict[str, dict[str, Any]] | None) -> int:
    """What counts against the message size: the body and each attribute's name, type and value."""
    size = len(body.encode("utf-8", "surrogatepass"))
    for name, value in (attributes or {}).items():
        raw = value.get("StringValue", value.get("BinaryValue", b""))
        size += len(name.encode()) + len(value["DataType"].encode())
        size += len(raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogatepass"))
    return size


def _md5_of_attributes(attributes: dict[str, dict[str, Any]]) -> str:
    """MD5OfMessageAttributes as SQS computes it (sqs-message-metadata.html): for each attribute in
    name order, the name, the type and the value each as 4-byte length + bytes, with a transport
    byte (1 string, 2 binary) before the value."""
    digest = hashlib.md5(usedforsecurity=False)

    def chunk(data: bytes) -> None:
        digest.update(struct.pack("!I", len(data)) + data)

    for name in sorted(attributes):
        value = attributes[name]
        chunk(name.encode())
        chunk(value["DataType"].encode())
        if "StringValue" in value:
            digest.update(b"\x01")
            chunk(str(value["StringValue"]).encode())
        else:
            digest.update(b"\x02")
            chunk(value["BinaryValue"])
    return digest.hexdigest()


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _sent(message_id: str, body: str, attributes: dict, sequence_number: str | None) -> dict:
    answer = {"MessageId": message_id, "MD5OfMessageBody": _md5(body)}
    if attributes:
        answer["MD5OfMessageAttributes"] = _md5_of_attributes(attributes)
    if sequence_number:
        answer["SequenceNumber"] = sequence_number
    return answer


def _received(message: SimMessage, system: set[str], attribute_names: list[str]) -> dict:
    """One message of a ReceiveMessage answer (boto3 shape), with the attributes asked for."""
    values = {
        "SenderId": SENDER_ID,
        "SentTimestamp": message.sent_ms,
        "ApproximateReceiveCount": message.receive_count,
        "ApproximateFirstReceiveTimestamp": message.first_receive_ms,
        "MessageDeduplicationId": message.dedup_id,
        "MessageGroupId": message.group_id,
        "SequenceNumber": message.sequence_number,
    }
    wanted = {k: str(v) for k, v in values.items() if v is not None and ("All" in system or k in system)}
    answer: dict[str, Any] = {
        "MessageId": message.message_id,
        "ReceiptHandle": message.handle,
        "MD5OfBody": _md5(message.body),
        "Body": message.body,
    }
    if wanted:
        answer["Attributes"] = wanted
    chosen = {
        name: dict(value)
        for name, value in message.attributes.items()
        if any(
            p in ("All", ".*") or p == name or (p.endswith(".*") and name.startswith(p[:-1]))
            for p in attribute_names
        )
    }
    if chosen:
        answer["MD5OfMessageAttributes"] = _md5_of_attributes(chosen)
        answer["MessageAttributes"] = chosen
    return answer


def _record(message: dict, queue_arn: str) -> dict:
    """A ReceiveMessage message as a Lambda SQS event record (local/stack/esm.py's build_record)."""
    attributes = message.get("Attributes", {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {k: attributes[k] for k in _SYSTEM_ATTRIBUTES if k in attributes},
        "messageAttributes": {
            name: {
                **({"stringValue": v["StringValue"]} if "StringValue" in v else {}),
                **(
                    {"binaryValue": base64.b64encode(v["BinaryValue"]).decode()} if "BinaryValue" in v else {}
                ),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": v["DataType"],
            }
            for name, v in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": REGION})
    return record
