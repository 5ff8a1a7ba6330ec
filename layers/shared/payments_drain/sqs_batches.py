"""SendMessageBatch limits, shared by the failure reporter, the producer tool and the replay."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

# SQS since January 2026 (botocore's SendMessageBatch documentation): a message and a whole
# SendMessageBatch request each hold at most 1 MiB, bodies plus message attributes.
MAX_ENTRIES = 10                 # SendMessageBatch: at most 10 entries ...
MAX_BATCH_BYTES = 1024 * 1024    # ... and this many bytes in total
MAX_MESSAGE_BYTES = 1024 * 1024  # the most a queue's MaximumMessageSize can allow


def entry_size(entry: dict[str, Any]) -> int:
    """What SQS counts against the message size: the body plus each attribute's name, type and value."""
    size = len(entry["MessageBody"].encode("utf-8"))
    for name, value in (entry.get("MessageAttributes") or {}).items():
        size += len(name.encode()) + len(value["DataType"].encode()) + len(str(value.get("StringValue", "")).encode())
    return size


def batches(entries: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Groups of at most 10 entries and 1 MiB; an entry is never split (callers keep each below it)."""
    group: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        grows = entry_size(entry)
        if group and (len(group) == MAX_ENTRIES or size + grows > MAX_BATCH_BYTES):
            yield group
            group, size = [], 0
        group.append(entry)
        size += grows
    if group:
        yield group
