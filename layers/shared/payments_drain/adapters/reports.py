"""Adapter: failure reports, one SQS message per rejected payment (format in docs/messages.md).

Each report is built and encoded on its own, so one that cannot be written never holds back the
others: text SQS cannot carry as is (a lone UTF-16 surrogate, a non-character) is escaped, a body
nested too deeply to re-encode is reported as its raw text, and a report that would not fit its
queue's message size carries a truncated ``payment`` with ``paymentTruncated``, the body's size
in bytes and its SHA-256, so it can be found again. A report that SQS did not accept is returned
to the caller, whose message then stays on the payments queue: nothing is lost for want of a report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from payments_drain.adapters.aws_clients import client_config
from payments_drain.adapters.sqs_batches import MAX_BYTES, batches, entry_size, sqs_json
from payments_drain.core import clock
from payments_drain.core.observability import logger, traced
from payments_drain.core.outcomes import Rejection

#: The report queue's MaximumMessageSize (template.yaml's FailureReportQueue): body plus attributes.
REPORT_MAX_BYTES = MAX_BYTES
#: A parsed body nested deeper than this is reported as its raw text: re-encoding it could exceed
#: Python's recursion limit (a payment is never nested more than a few levels).
MAX_PAYMENT_DEPTH = 64


def report_of(
    rejection: Rejection,
    request_id: str | None = None,
    source: str | None = None,
    max_bytes: int = REPORT_MAX_BYTES,
) -> dict[str, Any]:
    """The report of one rejection, ready to encode, kept within ``max_bytes`` as SQS counts them."""
    raw = rejection.message.body
    payment = rejection.payment if _depth_at_most(rejection.payment, MAX_PAYMENT_DEPTH) else raw
    report = {
        "messageId": rejection.message.message_id,
        "paymentKey": rejection.payment_key,
        "reason": rejection.reason.as_dict(),
        "payment": payment,
        "receiveCount": rejection.message.receive_count,
        "reportedAt": datetime.fromtimestamp(clock.wall(), timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "sourceQueueArn": source,
        "functionRequestId": request_id,
    }
    if _size(report) <= max_bytes:
        return report
    return _truncated(report, raw, max_bytes)


def encode_report(report: dict[str, Any]) -> str:
    """The message body, as text SQS accepts (``sqs_batches.sqs_json``)."""
    return sqs_json(report)


def _truncated(report: dict[str, Any], raw: str, max_bytes: int) -> dict[str, Any]:
    """``payment`` becomes the start of the raw body, as long as the report still fits."""
    data = raw.encode("utf-8", "surrogatepass")
    marked = {
        **report,
        "payment": "",
        "paymentTruncated": True,
        "paymentBytes": len(data),
        "paymentSha256": hashlib.sha256(data).hexdigest(),
    }
    base = _size(marked)
    room = max_bytes - base
    keep = min(len(raw), max(room, 0))
    while keep > 0:  # escaping can make a character up to 12 bytes: shrink in proportion until it fits
        marked["payment"] = raw[:keep]
        size = _size(marked)
        if size <= max_bytes:
            return marked
        keep = min(keep - 1, keep * room // (size - base))
    marked["payment"] = ""
    return marked


def _size(report: dict[str, Any]) -> int:
    return entry_size({"MessageBody": encode_report(report), "MessageAttributes": _attributes(report)})


def _attributes(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    reason = report.get("reason") or {}
    values = {"reasonCategory": reason.get("category")}
    if reason.get("code"):
        values["reasonCode"] = reason["code"]
    return {name: {"DataType": "String", "StringValue": str(value)} for name, value in values.items()}


def _depth_at_most(value: Any, limit: int) -> bool:
    """Whether nested lists and dicts go at most ``limit`` levels deep (without recursion)."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            if depth >= limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return True


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

    @traced(capture_response=False)
    def send(self, reports: Sequence[dict[str, Any]]) -> set[str]:
        """Send every report; return the message ids whose report was not accepted."""
        failed: set[str] = set()
        entries = []
        for index, report in enumerate(reports):
            try:
                entries.append(_entry(index, report))
            except Exception as error:  # noqa: BLE001 - this report alone stays unwritten
                logger.error(
                    "failure report could not be encoded",
                    extra={"messageId": report.get("messageId"), "errorType": type(error).__name__},
                )
                failed.add(report.get("messageId"))
        for group in batches(entries):
            ids = {e["Id"]: e["_messageId"] for e in group}
            request = [{k: v for k, v in e.items() if k != "_messageId"} for e in group]
            try:
                answer = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=request)
            except (BotoCoreError, ClientError):
                failed.update(ids.values())
                continue
            failed.update(ids[f["Id"]] for f in answer.get("Failed", []))
        return failed


def _entry(index: int, report: dict[str, Any]) -> dict[str, Any]:
    body = encode_report(report)
    body.encode("utf-8")  # raises here, for this report alone, rather than in the batch request
    return {
        "Id": str(index),
        "_messageId": report["messageId"],
        "MessageBody": body,
        "MessageAttributes": _attributes(report),
    }
