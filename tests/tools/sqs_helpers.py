"""Small helpers over real SQS calls (moto server through AWS_ENDPOINT_URL) for the tools' tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3


def new_queue(prefix: str, fifo: bool = False) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}" + (".fifo" if fifo else "")
    attributes = {"FifoQueue": "true"} if fifo else {}
    return boto3.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def counts(url: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )
    values = attributes["Attributes"]
    return int(values["ApproximateNumberOfMessages"]), int(values["ApproximateNumberOfMessagesNotVisible"])


def take_all(url: str) -> list[dict[str, Any]]:
    """Every message now on the queue (received with a long visibility timeout, so each once)."""
    sqs = boto3.client("sqs")
    got: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=600,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        )
        if not answer.get("Messages"):
            return got
        got.extend(answer["Messages"])


def bodies(url: str) -> list[Any]:
    return [json.loads(m["Body"]) for m in take_all(url)]
