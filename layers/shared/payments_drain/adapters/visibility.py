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
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from payments_drain.adapters.aws_clients import client_config
from payments_drain.adapters.sqs_batches import MAX_ENTRIES
from payments_drain.core.observability import traced

# SQS's code for a visibility past 12 h from the receive (limits.SQS_MAX_VISIBILITY_S; checked
# against the simulated SQS's contract, tests/contract/test_sqs_contract.py).
TOO_LONG = frozenset({"InvalidParameterValue"})
SHORTEST_RETRY_S = 60


def queue_url(endpoint_url: str, queue_arn: str) -> str:
    """``arn:aws:sqs:<region>:<account>:<name>`` at an SQS endpoint: ``<endpoint>/<account>/<name>``,
    the queue URL SQS itself uses (no GetQueueUrl round trip)."""
    parts = queue_arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError("not an SQS queue ARN")
    return f"{endpoint_url.rstrip('/')}/{parts[4]}/{parts[5]}"


class SqsVisibility:
    def __init__(self, client=None, parallel: int = 8, pool=None) -> None:
        self._client = client
        self.parallel = parallel
        self.pool = pool or ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="hold")

    @property
    def client(self):
        """Created on the first hold, not at cold start: most batches have none."""
        if self._client is None:
            self._client = boto3.client("sqs", config=client_config(max_pool_connections=self.parallel))
        return self._client

    @traced(capture_response=False)
    def hold(self, queue_arn: str, holds: Mapping[str, int]) -> int:
        """Hide each message (by receipt handle) for its seconds; returns how many holds failed.
        The calls of 10 go out in parallel (a batch of 1,000 retries is 100 calls). A hold SQS
        refuses for its length (``holds`` clamps them, but the event source's receive time is an
        estimate) is tried again at half its length, down to a minute."""
        url = queue_url(self.client.meta.endpoint_url, queue_arn)
        pending = dict(holds)
        failed = 0
        while pending:
            items = list(pending.items())
            groups = [items[i : i + MAX_ENTRIES] for i in range(0, len(items), MAX_ENTRIES)]
            pending = {}
            for group, refused in zip(groups, self.pool.map(lambda g: self._send(url, g), groups)):
                for handle, seconds in group:
                    if handle not in refused:
                        continue
                    if refused[handle] in TOO_LONG and seconds // 2 >= SHORTEST_RETRY_S:
                        pending[handle] = seconds // 2
                    else:
                        failed += 1
        return failed

    def _send(self, url: str, group: list[tuple[str, int]]) -> dict[str, str]:
        """One ChangeMessageVisibilityBatch; the refused receipt handles with SQS's error code."""
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
            for i, (handle, seconds) in enumerate(group)
        ]
        try:
            answer = self.client.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        except ClientError as error:
            # SQS's API reports each entry on its own; moto (and maybe SQS) refuses the whole call
            # for one hold too long: then every hold of the group is tried again shorter.
            code = str(error.response.get("Error", {}).get("Code", ""))
            return {handle: code if code in TOO_LONG else "RequestFailed" for handle, _ in group}
        except BotoCoreError:
            return {handle: "RequestFailed" for handle, _ in group}
        return {group[int(f["Id"])][0]: str(f.get("Code", "")) for f in answer.get("Failed") or []}
