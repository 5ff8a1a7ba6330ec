"""Adapter: failure reports, one SQS message per rejected payment (contract in DESIGN.md).

A report that SQS did not accept is returned to the caller, whose message then stays on the
payments queue: nothing is lost for want of a report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from payments_drain.outcomes import Rejection
from payments_drain.sqs_batches import batches
from payments_drain.aws_clients import client_config
from payments_drain.observability import tracer



def report_of(rejection: Rejection, request_id: str | None = None, source: str | None = None) -> dict[str, Any]:
    return {
        "messageId": rejection.message.message_id,
        "paymentKey": rejection.payment_key,
        "reason": rejection.reason.as_dict(),
        "payment": rejection.payment,
        "receiveCount": rejection.message.receive_count,
        "reportedAt": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "sourceQueueArn": source,
        "functionRequestId": request_id,
    }


class SqsReporter:
    def __init__(self, queue_url: str, client=None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self):
        """Created on the first report, not at cold start: most batches have none."""
        if self._client is None:
            self._client = boto3.client("sqs", config=client_config())
        return self._client

    @tracer.capture_method(capture_response=False)
    def send(self, reports: Sequence[dict[str, Any]]) -> set[str]:
        """Send every report; return the message ids whose report was not accepted."""
        failed: set[str] = set()
        for group in batches([_entry(i, r) for i, r in enumerate(reports)]):
            ids = {e["Id"]: e["_messageId"] for e in group}
            entries = [{k: v for k, v in e.items() if k != "_messageId"} for e in group]
            try:
                answer = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (BotoCoreError, ClientError):
                failed.update(ids.values())
                continue
            failed.update(ids[f["Id"]] for f in answer.get("Failed", []))
        return failed


def _entry(index: int, report: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(report, ensure_ascii=False, separators=(",", ":"))
    attributes = {"reasonCategory": report["reason"]["category"]}
    if report["reason"].get("code"):
        attributes["reasonCode"] = report["reason"]["code"]
    return {
        "Id": str(index),
        "_messageId": report["messageId"],
        "MessageBody": body,
        "MessageAttributes": {k: {"DataType": "String", "StringValue": str(v)} for k, v in attributes.items()},
    }
