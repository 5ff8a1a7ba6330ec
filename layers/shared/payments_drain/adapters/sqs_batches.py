"""SendMessageBatch: its limits and a sender that reports every entry SQS did not take (shared by the
failure reporter, the producer tool and the replay)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from payments_drain.core.limits import SQS_BATCH_ENTRIES, SQS_MAX_MESSAGE_BYTES

# SQS's limits (core.limits): a batch call of at most 10 entries; a message and a whole
# SendMessageBatch request each hold at most 1 MiB, bodies plus message attributes.
MAX_ENTRIES = SQS_BATCH_ENTRIES.value
MAX_BYTES = SQS_MAX_MESSAGE_BYTES.value
MAX_SQS_ID = 128  # MessageGroupId and MessageDeduplicationId
SEND_ATTEMPTS = 3  # entries SQS failed on its side (SenderFault false) are resent


# What SQS accepts in a message: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
# The rest, spelt out: the negated class of the above costs every cold start 3 ms to compile, this 0.3.
NOT_SQS_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def sqs_json(value: Any) -> str:
    """``value`` as compact JSON that SQS accepts: UTF-8 text where SQS takes every character, else
    with every non-ASCII character escaped (a lone surrogate then travels as its ``\\ud83d``
    escape and reads back as the same string)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if NOT_SQS_TEXT.search(text):
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text


def entry_size(entry: dict[str, Any]) -> int:
    """What SQS counts against the message size: the body plus each attribute's name, type and value."""
    size = len(entry["MessageBody"].encode("utf-8"))
    for name, value in (entry.get("MessageAttributes") or {}).items():
        size += (
            len(name.encode())
            + len(value["DataType"].encode())
            + len(str(value.get("StringValue", "")).encode())
        )
    return size


def batches(entries: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Groups of at most 10 entries and 1 MiB; an entry is never split (callers keep each below it)."""
    group: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        grows = entry_size(entry)
        if group and (len(group) == MAX_ENTRIES or size + grows > MAX_BYTES):
            yield group
            group, size = [], 0
        group.append(entry)
        size += grows
    if group:
        yield group


def enqueue(client: Any, queue_url: str, entries: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Send every entry (each with a unique ``Id``); return ``{Id: why}`` for those SQS did not accept.

    An entry is only reported as sent when SendMessageBatch listed it as successful; anything
    else (a refused call, an unreachable endpoint, a per-entry failure) is returned."""
    failed: dict[str, str] = {}
    for group in batches(entries):
        pending = group
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                answer = client.send_message_batch(QueueUrl=queue_url, Entries=pending)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "ClientError")
                failed.update({e["Id"]: f"SendMessageBatch refused: {code}" for e in pending})
                break
            except BotoCoreError as error:
                failed.update({e["Id"]: f"SendMessageBatch failed: {type(error).__name__}" for e in pending})
                break
            retry = []
            by_id = {e["Id"]: e for e in pending}
            for failure in answer.get("Failed", []):
                if not failure.get("SenderFault") and attempt < SEND_ATTEMPTS:
                    retry.append(by_id[failure["Id"]])
                else:
                    failed[failure["Id"]] = (
                        f"{failure.get('Code', 'Failed')}: {failure.get('Message', '')}".strip()
                    )
            if not retry:
                break
            pending = retry
    return failed


def sqs_id(value: str) -> str:
    """A MessageGroupId / MessageDeduplicationId: the value itself, or its SHA-256 when too long."""
    return value if len(value) <= MAX_SQS_ID else hashlib.sha256(value.encode()).hexdigest()


def sqs_client():
    return boto3.client("sqs")  # endpoint from AWS_ENDPOINT_URL, region and credentials as usual
