"""Adapter: holding retries on the payments queue (SQS ChangeMessageVisibilityBatch).

A message retried only because HubSpot cannot take it yet (daily limit spent, throttled, down)
is hidden until sending can resume instead of coming back every visibility timeout: each
delivery counts against maxReceiveCount, and that budget is kept for real failures. Lambda
leaves a listed batch item failure's visibility as it finds it, so the hold set here is the
one SQS applies. Best effort: a message whose hold fails comes back after the queue's own
visibility timeout, as without this.
"""

from __future__ import annotations

from collections.abc import Mapping

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from payments_drain.aws_clients import client_config
from payments_drain.observability import tracer

MAX_ENTRIES = 10  # ChangeMessageVisibilityBatch: at most 10 entries


def queue_url(endpoint_url: str, queue_arn: str) -> str:
    """``arn:aws:sqs:<region>:<account>:<name>`` at an SQS endpoint: ``<endpoint>/<account>/<name>``,
    the queue URL SQS itself uses (no GetQueueUrl round trip)."""
    parts = queue_arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError("not an SQS queue ARN")
    return f"{endpoint_url.rstrip('/')}/{parts[4]}/{parts[5]}"


class SqsVisibility:
    def __init__(self, client=None) -> None:
        self._client = client

    @property
    def client(self):
        """Created on the first hold, not at cold start: most batches have none."""
        if self._client is None:
            self._client = boto3.client("sqs", config=client_config())
        return self._client

    @tracer.capture_method(capture_response=False)
    def hold(self, queue_arn: str, holds: Mapping[str, int]) -> int:
        """Hide each message (by receipt handle) for its seconds; returns how many holds failed."""
        url = queue_url(self.client.meta.endpoint_url, queue_arn)
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
            for i, (handle, seconds) in enumerate(holds.items())
        ]
        failed = 0
        for start in range(0, len(entries), MAX_ENTRIES):
            group = entries[start : start + MAX_ENTRIES]
            try:
                answer = self.client.change_message_visibility_batch(QueueUrl=url, Entries=group)
            except (BotoCoreError, ClientError):
                failed += len(group)
                continue
            failed += len(answer.get("Failed") or [])
        return failed
