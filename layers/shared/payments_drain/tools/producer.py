"""Producer tool: validate payments with the drain's own rules and put them on the payments queue.

    python -m payments_drain.tools.producer FILE --queue-url URL [--dry-run] [--unique-property NAME]
                                      [--format jsonl|csv] [--group-id ID | --group-id-field FIELD]

FILE holds one payment per line: JSON lines (each line one message body, docs/messages.md's message format)
or CSV (a ``paymentKey`` column, an optional ``associations`` column holding JSON, every other
column a property name; an empty cell leaves its property out). Each line is checked with
``messages.parse_record`` exactly as the drain will check it; an invalid line is reported by
number and reason and never sent. Valid lines go out with SendMessageBatch (10 entries and at
most 1 MiB per call). FIFO queues: the group id is a constant (``--group-id``) or a field of
each payment (``--group-id-field``), the deduplication id is the paymentKey.

Every line ends either sent or reported, whatever it holds: bytes that are not UTF-8, characters
SQS refuses, a CSV cell over the csv module's field limit or a broken quote (reported with the
lines it spans; reading goes on after it). Blank lines are skipped and counted. A CSV header
that differs from a known column only by case (``paymentkey``, ``HS_INITIAL_AMOUNT``) or names a
column twice is an error of the whole file: nothing is sent.

Problems go to stderr, one line each; the summary is one JSON object on stdout, and
``sent + sendFailed + invalid`` (``valid + invalid`` in a dry run) is always ``lines``. The exit
code is 0 when every line was valid and sent, 1 otherwise, 2 for a usage error.

The file is read by ``core.payment_files``; entries go out through ``adapters.sqs_batches.enqueue``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payments_drain.adapters.sqs_batches import (
    MAX_BYTES,
    NOT_SQS_TEXT,
    enqueue,
    entry_size,
    sqs_client,
    sqs_id,
)
from payments_drain.core.messages import parse_record
from payments_drain.core.outcomes import Rejection
from payments_drain.core.payment_files import FileProblem, Line, read_lines, synthetic_record

MAX_KEPT_PROBLEMS = 1000  # in the summary; stderr has every one


@dataclass(frozen=True, slots=True)
class Target:
    """Where valid payments go: a standard queue, or a FIFO queue with its group id rule."""

    queue_url: str
    group_id: str | None = None
    group_id_field: str | None = None

    @property
    def fifo(self) -> bool:
        return self.queue_url.rstrip("/").endswith(".fifo")

    def entry(self, line: Line, payment_key: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """The SendMessageBatch entry, or raises ValueError saying why this line cannot go to the queue."""
        entry: dict[str, Any] = {"Id": str(line.number), "MessageBody": line.body}
        # A character SQS refuses fails the whole SendMessageBatch call: such a line is reported alone.
        refused = NOT_SQS_TEXT.search(line.body or "")
        if refused is not None:
            raise ValueError(
                "INVALID_CHARACTER",
                f"character U+{ord(refused.group()):04X} at "
                f"{refused.start() + 1} is not allowed in an SQS message",
            )
        if self.fifo:
            if not payment_key:
                raise ValueError(
                    "MISSING_PAYMENT_KEY", "a FIFO queue needs paymentKey (the deduplication id)"
                )
            group = self.group_id or _field(body, self.group_id_field or "")
            if not group:
                raise ValueError(
                    "MISSING_GROUP_ID", f"no value for the group id field {self.group_id_field!r}"
                )
            entry["MessageGroupId"] = sqs_id(group)
            entry["MessageDeduplicationId"] = sqs_id(payment_key)
        # SQS's limit (core.limits), which template.yaml's PaymentsQueue sets as its
        # MaximumMessageSize (tests/template keeps the two equal).
        if entry_size(entry) > MAX_BYTES:
            raise ValueError(
                "MESSAGE_TOO_LARGE",
                f"the message is {entry_size(entry)} bytes, more than SQS's {MAX_BYTES}",
            )
        return entry


def _field(body: dict[str, Any], name: str) -> str | None:
    """A top-level field of the body (``paymentKey``) or one of its properties."""
    value = body.get(name)
    if value is None and isinstance(body.get("properties"), dict):
        value = body["properties"].get(name)
    return value if isinstance(value, str) and value else None


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class Summary:
    lines: int = 0  # payments read (a CSV row spanning lines counts once); blank ones not included
    blank: int = 0
    valid: int = 0
    invalid: int = 0
    sent: int = 0
    send_failed: int = 0
    dry_run: bool = False
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0
    stopped: str = ""

    def as_dict(self, max_problems: int = 100) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "lines": self.lines,
            "blank": self.blank,
            "valid": self.valid,
            "invalid": self.invalid,
            "sent": self.sent,
            "sendFailed": self.send_failed,
            "problems": self.problems[:max_problems],
            "problemsNotListed": max(0, self.problem_count - max_problems),
            **({"stopped": self.stopped} if self.stopped else {}),
        }

    @property
    def ok(self) -> bool:
        return self.invalid == 0 and self.send_failed == 0 and not self.stopped


def produce(
    lines: Iterable[Line],
    target: Target,
    *,
    unique_property: str | None = None,
    dry_run: bool = False,
    client: Any = None,
    report: Callable[[str], None] = lambda text: None,
) -> Summary:
    """Validate every line; send the valid ones (unless ``dry_run``) in batches as the file is read."""
    summary = Summary(dry_run=dry_run)
    keys: dict[str, int] = {}
    pending: list[dict[str, Any]] = []

    def problem(number: int, kind: str, code: str, message: str, last: int | None = None) -> None:
        summary.problem_count += 1
        if len(summary.problems) < MAX_KEPT_PROBLEMS:
            item = {"line": number, "kind": kind, "code": code, "message": message}
            summary.problems.append(item if last in (None, number) else {**item, "lastLine": last})
        where = f"line {number}" if last in (None, number) else f"lines {number}-{last}"
        report(f"{where}: {kind} {code}: {message}")

    def flush() -> None:
        if not pending:
            return
        failed = enqueue(client, target.queue_url, pending)
        for entry in pending:
            if entry["Id"] in failed:
                summary.send_failed += 1
                problem(int(entry["Id"]), "not sent", "SEND_FAILED", failed[entry["Id"]])
            else:
                summary.sent += 1
        report(f"sent {summary.sent}, failed {summary.send_failed} after {summary.lines} lines")
        pending.clear()

    if not dry_run and client is None:
        client = sqs_client()
    try:
        for line in lines:
            if line.problem is not None and line.problem[0] == "BLANK":
                summary.blank += 1
                continue
            summary.lines += 1
            try:
                entry = _validate(line, target, unique_property, keys)
            except ValueError as error:
                summary.invalid += 1
                code, message = error.args
                problem(line.number, "invalid", code, message, line.last)
                continue
            summary.valid += 1
            if not dry_run:
                pending.append(entry)
                if len(pending) >= 50:  # send as we read; batches() cuts this into SendMessageBatch calls
                    flush()
    except OSError as error:  # the file itself failed (a disk or network error): say where
        summary.stopped = f"reading stopped after {summary.lines} lines: {error.strerror or error}"
        report(summary.stopped)
    if not dry_run:
        flush()
    return summary


def _validate(
    line: Line, target: Target, unique_property: str | None, keys: dict[str, int]
) -> dict[str, Any]:
    if line.problem is not None:
        raise ValueError(*line.problem)
    verdict = parse_record(synthetic_record(line.body, line.number), unique_property)
    if isinstance(verdict, Rejection):
        raise ValueError(verdict.reason.code or verdict.reason.category, verdict.reason.message)
    body = json.loads(line.body)
    payment_key = body.get("paymentKey")
    if payment_key is not None and payment_key in keys:
        raise ValueError("DUPLICATE_PAYMENT_KEY", f"paymentKey repeats line {keys[payment_key]}")
    entry = target.entry(line, payment_key, body)
    if payment_key is not None:
        keys[payment_key] = line.number
    return entry


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m payments_drain.tools.producer",
        description="Validate payments with the drain's rules and enqueue the valid ones.",
    )
    p.add_argument("file", type=Path, help="JSON lines (.jsonl) or CSV (.csv) file, one payment per line")
    p.add_argument(
        "--queue-url",
        default=os.environ.get("PAYMENTS_QUEUE_URL"),
        help="payments queue URL (default: $PAYMENTS_QUEUE_URL)",
    )
    p.add_argument(
        "--format", choices=("jsonl", "csv"), help="file format (default: from the file's extension)"
    )
    p.add_argument("--dry-run", action="store_true", help="validate only; send nothing")
    p.add_argument(
        "--unique-property",
        default=os.environ.get("HUBSPOT_UNIQUE_PROPERTY", ""),
        help="the drain's HUBSPOT_UNIQUE_PROPERTY, so validation matches it (default: that variable)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--group-id", help="FIFO queues: one MessageGroupId for every payment")
    group.add_argument(
        "--group-id-field",
        help="FIFO queues: take MessageGroupId from this field "
        "(paymentKey or a property name) of each payment",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr (problems still are)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.queue_url and not args.dry_run:
        parser().error("--queue-url (or PAYMENTS_QUEUE_URL) is required unless --dry-run")
    target = Target(args.queue_url or "", args.group_id, args.group_id_field)
    if target.fifo and not (args.group_id or args.group_id_field):
        parser().error("a FIFO queue needs --group-id or --group-id-field")
    if not args.file.is_file():
        parser().error(f"no such file: {args.file}")

    def report(text: str) -> None:
        if not args.quiet or text.startswith("line "):
            print(text, file=sys.stderr, flush=True)

    try:
        summary = produce(
            read_lines(args.file, args.format),
            target,
            unique_property=args.unique_property or None,
            dry_run=args.dry_run,
            report=report,
        )
    except FileProblem as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        print(json.dumps({**Summary(dry_run=args.dry_run).as_dict(), "fileError": str(error)}))
        return 1
    print(json.dumps(summary.as_dict()))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
