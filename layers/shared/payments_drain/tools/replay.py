"""Replay: put reported payments back on the payments queue once the cause of their rejection is fixed.

    python -m payments_drain.tools.replay [--dry-run] [--category C]... [--code C]... [--payment-key K]...
                                    [--since T] [--until T] [--limit N] [--show N]
                                    [--failure-queue-url URL] [--payments-queue-url URL]

The same code serves the replay function (``functions/replay/app.py``), whose event carries
the same options (``{"dryRun": true, "category": "...", "code": "...", "since": "...",
"until": "...", "limit": 100}``) and which returns the same summary.

How a run goes:
- Reports are received from the failure-report queue, 10 at a time, with a visibility timeout.
- A report is *selected* when it matches every given filter (any of the given categories, any of
  the given codes, any of the given paymentKeys, ``since <= reportedAt < until``) and the limit
  is not reached yet.
- A selected report's original ``payment`` goes to the payments queue with SendMessageBatch
  (the parsed body as JSON, or the raw string as it came), with the message attribute
  ``replayOf`` = the original messageId. The report is deleted only after SQS accepted that
  send: a failed send leaves the report on its queue.
- Every other report (not matching, over the limit, unreadable, failed to send, or any report
  at all in a dry run) is held invisible until the run ends, so one pass sees each report
  once, and is then released untouched (ChangeMessageVisibility 0).

No payment is created twice: the drain's ledger (and HubSpot's unique property, when set) is
keyed by paymentKey, so a replayed payment that had in fact been created settles as a
duplicate. The paymentKey is therefore kept as it was; a parsed body without one (whose key was
the original SQS messageId) gets ``"paymentKey": <original messageId>`` so it keeps that key.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Annotated, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import (
    BeforeValidator,
    Field,
    ValidationError,
)

from payments_drain.adapters.sqs_batches import MAX_ENTRIES, enqueue, sqs_client, sqs_id, sqs_json
from payments_drain.core.limits import SQS_MAX_VISIBILITY_S
from payments_drain.core.tool_request import ToolRequest

STEP_S = 5.0  # time one receive-send-delete round needs, beyond its long-poll wait
MAX_ERRORS_SHOWN = 20
MAX_REPEAT_ROUNDS = 10  # receives in a row bringing only reports this run already holds


def _listed(value: Any) -> Any:
    """A filter given once (``"category": "X"``) or several times (``["X", "Y"]``)."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


Filter = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_listed)]


class ReplayRequest(ToolRequest):
    """What to replay and how (``ToolRequest``: the CLI's flags, the event's keys)."""

    dry_run: bool = False
    category: Filter = []
    code: Filter = []
    payment_key: Filter = []
    limit: Annotated[int, Field(ge=1)] | None = None
    show: Annotated[int, Field(ge=0, le=1000)] = 20  # paymentKeys listed in the summary
    visibility_timeout: Annotated[int, Field(ge=1, le=SQS_MAX_VISIBILITY_S.value)] = 300
    wait_seconds: Annotated[int, Field(ge=0, le=20)] = 1  # long poll of each receive
    empty_receives: Annotated[int, Field(ge=1, le=10)] = 2  # receives with nothing new that end the run

    def matches(self, report: dict[str, Any]) -> bool:
        reason = report.get("reason") if isinstance(report.get("reason"), dict) else {}
        if self.category and reason.get("category") not in self.category:
            return False
        if self.code and reason.get("code") not in self.code:
            return False
        if self.payment_key and report.get("paymentKey") not in self.payment_key:
            return False
        if self.since is not None or self.until is not None:
            reported = _timestamp(report.get("reportedAt"))
            if reported is None:
                return False
            if self.since is not None and reported < self.since:
                return False
            if self.until is not None and reported >= self.until:
                return False
        return True


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def read_report(body: str) -> dict[str, Any] | None:
    """A failure report (docs/messages.md's failure report format), or None when the message is not a replayable one."""
    try:
        report = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(report, dict) or not isinstance(report.get("messageId"), str):
        return None
    if report.get("payment") is None or report.get("paymentTruncated"):
        return None  # nothing to send, or only the start of the body (docs/messages.md)
    return report


def replay_body(report: dict[str, Any]) -> str:
    """The message body to send again: the raw string as it came, or the parsed body as JSON,
    with ``paymentKey`` = the original messageId when the body had none (the key it was known by)."""
    payment = report["payment"]
    if isinstance(payment, str):
        return payment
    if isinstance(payment, dict) and payment.get("paymentKey") is None:
        payment = {**payment, "paymentKey": report["messageId"]}
    return sqs_json(payment)  # a lone surrogate, as a report carries it, goes back escaped


def replay_entry(entry_id: str, report: dict[str, Any], queue_url: str) -> dict[str, Any]:
    """The SendMessageBatch entry that puts ``report``'s payment on the queue at ``queue_url``."""
    entry: dict[str, Any] = {
        "Id": entry_id,
        "MessageBody": replay_body(report),
        "MessageAttributes": {"replayOf": {"DataType": "String", "StringValue": report["messageId"]}},
    }
    if queue_url.rstrip("/").endswith(".fifo"):
        entry["MessageGroupId"] = sqs_id(str(report.get("paymentKey") or report["messageId"]))
        entry["MessageDeduplicationId"] = sqs_id("replay-" + report["messageId"])
    return entry


@dataclass
class Summary:
    dry_run: bool
    received: int = 0  # distinct reports read
    matched: int = 0  # selected for replay (in a dry run: would be replayed)
    replayed: int = 0  # sent to the payments queue and deleted from the report queue
    send_failed: int = 0  # not accepted by the payments queue: the report stays
    delete_failed: int = 0  # sent, but the report could not be deleted: a later replay is a duplicate
    not_matching: int = 0
    over_limit: int = 0
    unreadable: int = 0  # not a failure report with a payment: left untouched
    released: int = 0
    release_failed: int = 0  # reappear by themselves when their visibility timeout ends
    stopped_by: str = ""  # "drained" (nothing new to read), "limit" or "time"
    by_category: Counter = field(default_factory=Counter)
    by_code: Counter = field(default_factory=Counter)
    payment_keys: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "received": self.received,
            "matched": self.matched,
            "replayed": self.replayed,
            "sendFailed": self.send_failed,
            "deleteFailed": self.delete_failed,
            "notMatching": self.not_matching,
            "overLimit": self.over_limit,
            "unreadable": self.unreadable,
            "released": self.released,
            "releaseFailed": self.release_failed,
            "stoppedBy": self.stopped_by,
            "byCategory": dict(self.by_category),
            "byCode": dict(self.by_code),
            "paymentKeys": list(self.payment_keys),
            "errors": list(self.errors),
        }

    def progress(self) -> str:
        verb = "would replay" if self.dry_run else "replayed"
        done = self.matched if self.dry_run else self.replayed
        return (
            f"read {self.received} reports: {self.matched} matched, {verb} {done}, "
            f"send failed {self.send_failed}, not matching {self.not_matching}"
        )


class ReportQueue:
    """The failure-report queue's side of a run: reports received, held invisible until the run
    ends, deleted once replayed, and the held ones released untouched."""

    def __init__(self, client: Any, url: str, request: ReplayRequest) -> None:
        self.client = client
        self.url = url
        self.request = request
        self.held: dict[str, str] = {}  # report's SQS MessageId -> its latest receipt handle

    def receive(self) -> tuple[list[dict[str, Any]], bool]:
        """The reports not seen before in this run, and whether the receive brought any message."""
        answer = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=MAX_ENTRIES,
            VisibilityTimeout=self.request.visibility_timeout,
            WaitTimeSeconds=self.request.wait_seconds,
        )
        fresh = []
        for message in answer.get("Messages", []):
            if message["MessageId"] in self.held:  # held, and its visibility ran out: keep the new handle
                self.held[message["MessageId"]] = message["ReceiptHandle"]
            else:
                fresh.append(message)
        return fresh, bool(answer.get("Messages"))

    def hold(self, message: dict[str, Any]) -> None:
        self.held[message["MessageId"]] = message["ReceiptHandle"]

    def delete(self, messages: list[dict[str, Any]]) -> dict[int, str]:
        """Delete ``messages``; the position of each one SQS did not delete, with why."""
        failed: dict[int, str] = {}
        for start in range(0, len(messages), MAX_ENTRIES):
            group = messages[start : start + MAX_ENTRIES]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(group)]
            try:
                answer = self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
                codes = {f["Id"]: f.get("Code", "Failed") for f in answer.get("Failed", [])}
            except (BotoCoreError, ClientError) as error:
                codes = {e["Id"]: type(error).__name__ for e in entries}
            failed.update({start + int(i): code for i, code in codes.items()})
        return failed

    def release(self) -> tuple[int, int]:
        """Make every held report visible again, untouched: how many were, and how many failed."""
        handles = list(self.held.values())
        released = release_failed = 0
        for start in range(0, len(handles), MAX_ENTRIES):
            group = handles[start : start + MAX_ENTRIES]
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(group)
            ]
            try:
                answer = self.client.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
                failed = len(answer.get("Failed", []))
            except (BotoCoreError, ClientError):
                failed = len(entries)
            released += len(entries) - failed
            release_failed += failed
        self.held.clear()
        return released, release_failed


class Replay:
    """One run over the failure-report queue: which reports are replayed, and their sends to the
    payments queue. ``time_left`` (seconds) bounds it inside a Lambda."""

    def __init__(
        self,
        request: ReplayRequest,
        failure_queue_url: str,
        payments_queue_url: str,
        client: Any = None,
        progress: Callable[[str], None] = lambda text: None,
        time_left: Callable[[], float] | None = None,
    ) -> None:
        self.request = request
        self.payments_queue_url = payments_queue_url
        self.client = client or sqs_client()
        self.reports = ReportQueue(self.client, failure_queue_url, request)
        self.progress = progress
        self.time_left = time_left
        self.summary = Summary(dry_run=request.dry_run)

    def run(self) -> Summary:
        try:
            self._drain()
        finally:
            released, failed = self.reports.release()
            self.summary.released += released
            self.summary.release_failed += failed
            self.progress(self.summary.progress() + f"; released {self.summary.released}")
        return self.summary

    def _drain(self) -> None:
        request, summary = self.request, self.summary
        quiet = repeats = 0
        while True:
            if request.limit is not None and summary.matched >= request.limit:
                summary.stopped_by = "limit"
                return
            if self.time_left is not None and self.time_left() < request.wait_seconds + STEP_S:
                summary.stopped_by = "time"
                return
            fresh, any_message = self.reports.receive()
            if not fresh:
                # Nothing at all: the queue is read. Only held reports again (a run longer than the
                # visibility timeout): they are hidden again; give up after a few such rounds.
                if any_message:
                    repeats += 1
                else:
                    quiet += 1
                if quiet >= request.empty_receives or repeats >= MAX_REPEAT_ROUNDS:
                    summary.stopped_by = "drained"
                    return
                continue
            quiet = repeats = 0
            self._handle(fresh)
            self.progress(summary.progress())

    def _handle(self, messages: list[dict[str, Any]]) -> None:
        request, summary = self.request, self.summary
        entries: list[dict[str, Any]] = []
        selected: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for index, message in enumerate(messages):
            summary.received += 1
            report = read_report(message["Body"])
            if report is None:
                summary.unreadable += 1
            elif not request.matches(report):
                summary.not_matching += 1
            elif request.limit is not None and summary.matched >= request.limit:
                summary.over_limit += 1
            else:
                self._count(report)
                if not request.dry_run:
                    entry = replay_entry(str(index), report, self.payments_queue_url)
                    entries.append(entry)
                    selected[entry["Id"]] = (message, report)
                    continue
            self.reports.hold(message)
        if not entries:
            return
        failed = enqueue(self.client, self.payments_queue_url, entries)
        sent = []
        for entry_id, (message, report) in selected.items():
            if entry_id in failed:
                summary.send_failed += 1
                self._error(report, failed[entry_id])
                self.reports.hold(message)
            else:
                sent.append((message, report))
        not_deleted = self.reports.delete([message for message, _ in sent])
        for i, (_, report) in enumerate(sent):
            if i in not_deleted:
                summary.delete_failed += 1
                self._error(report, f"sent, but the report was not deleted ({not_deleted[i]})")
            else:
                summary.replayed += 1

    def _count(self, report: dict[str, Any]) -> None:
        summary = self.summary
        summary.matched += 1
        reason = report.get("reason") if isinstance(report.get("reason"), dict) else {}
        summary.by_category[str(reason.get("category"))] += 1
        summary.by_code[str(reason.get("code"))] += 1
        if len(summary.payment_keys) < self.request.show:
            summary.payment_keys.append(str(report.get("paymentKey") or report["messageId"]))

    def _error(self, report: dict[str, Any], text: str) -> None:
        if len(self.summary.errors) < MAX_ERRORS_SHOWN:
            self.summary.errors.append(
                {"messageId": report["messageId"], "paymentKey": str(report.get("paymentKey")), "error": text}
            )


def replay(request: ReplayRequest, failure_queue_url: str, payments_queue_url: str, **kwargs: Any) -> Summary:
    return Replay(request, failure_queue_url, payments_queue_url, **kwargs).run()


# --- command line ----------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m payments_drain.tools.replay",
        description="Put reported payments back on the payments queue.",
    )
    p.add_argument(
        "--failure-queue-url",
        default=os.environ.get("FAILURE_QUEUE_URL"),
        help="failure-report queue URL (default: $FAILURE_QUEUE_URL)",
    )
    p.add_argument(
        "--payments-queue-url",
        default=os.environ.get("PAYMENTS_QUEUE_URL"),
        help="payments queue URL (default: $PAYMENTS_QUEUE_URL)",
    )
    p.add_argument("--dry-run", action="store_true", help="show what would be replayed; change nothing")
    p.add_argument("--category", action="append", default=[], help="reason.category to select (repeatable)")
    p.add_argument("--code", action="append", default=[], help="reason.code to select (repeatable)")
    p.add_argument("--payment-key", action="append", default=[], help="paymentKey to select (repeatable)")
    p.add_argument(
        "--since", help="select reports with reportedAt at or after this ISO 8601 time (UTC if no zone)"
    )
    p.add_argument(
        "--until", help="select reports with reportedAt before this ISO 8601 time (UTC if no zone)"
    )
    p.add_argument("--limit", type=int, help="replay at most this many reports")
    p.add_argument("--show", type=int, default=20, help="list this many selected paymentKeys (default 20)")
    p.add_argument(
        "--visibility-timeout",
        type=int,
        default=300,
        help="seconds each report stays hidden while the run holds it (default 300)",
    )
    p.add_argument("--wait-seconds", type=int, default=1, help="long-poll wait of each receive (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def _flag(name: object) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", str(name)).lower().replace("_", "-")


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not args.failure_queue_url or not args.payments_queue_url:
        p.error(
            "--failure-queue-url and --payments-queue-url (or FAILURE_QUEUE_URL, PAYMENTS_QUEUE_URL) are required"
        )
    try:
        request = ReplayRequest(
            dry_run=args.dry_run,
            category=args.category,
            code=args.code,
            payment_key=args.payment_key,
            since=args.since,
            until=args.until,
            limit=args.limit,
            show=args.show,
            visibility_timeout=args.visibility_timeout,
            wait_seconds=args.wait_seconds,
        )
    except ValidationError as error:
        p.error(
            "; ".join(
                f"--{_flag(e['loc'][0]) if e['loc'] else 'since/--until'}: {e['msg']}"
                for e in error.errors(include_url=False)
            )
        )

    def progress(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    try:
        summary = replay(request, args.failure_queue_url, args.payments_queue_url, progress=progress)
    except (BotoCoreError, ClientError) as error:
        print(f"replay stopped: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary.as_dict(), ensure_ascii=False))
    if summary.matched == 0 and (args.category or args.code or args.payment_key):
        # Most often a misspelt filter: say so instead of a quiet "nothing to do".
        given = " ".join(
            [
                *(f"--category {c}" for c in args.category),
                *(f"--code {c}" for c in args.code),
                *(f"--payment-key {k}" for k in args.payment_key),
            ]
        )
        print(
            f"replay: no failure report matches {given} ({summary.received} reports read, "
            f"{summary.unreadable} unreadable); nothing was replayed",
            file=sys.stderr,
        )
        return 2
    return 0 if summary.send_failed == 0 and summary.delete_failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
