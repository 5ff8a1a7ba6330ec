"""Producer tool: validate payments with the drain's own rules and put them on the payments queue.

    python -m payments_drain.producer FILE --queue-url URL [--dry-run] [--unique-property NAME]
                                      [--format jsonl|csv] [--group-id ID | --group-id-field FIELD]

FILE holds one payment per line: JSON lines (each line one message body, the README's message format)
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

``enqueue`` (the batching sender) is shared with ``payments_drain.replay``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from payments_drain.messages import READ_ONLY, WRITABLE, parse_record
from payments_drain.outcomes import Rejection
from payments_drain.sqs_batches import batches, entry_size

MAX_MESSAGE_BYTES = 256 * 1024  # the payments queue's own limit may still be the old default
MAX_SQS_ID = 128  # MessageGroupId and MessageDeduplicationId
MAX_KEPT_PROBLEMS = 1000  # in the summary; stderr has every one
SEND_ATTEMPTS = 3  # entries SQS failed on its side (SenderFault false) are resent


# --- sending, shared with the replay ---------------------------------------------------------------


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


# --- reading and validating ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One payment of the input file: its line number and its message body (or why it has none)."""

    number: int
    body: str | None
    problem: tuple[str, str] | None = None  # (code, message) when the line cannot become a body
    last: int | None = None  # the last physical line of a problem spanning several


class FileProblem(ValueError):
    """The file as a whole cannot be read as payments (a bad CSV header): nothing is sent."""


# Characters SQS accepts in a message body (its documented set); anything else fails the whole
# SendMessageBatch call, so such a line is reported alone instead.
_SQS_REFUSED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)
KNOWN_COLUMNS = frozenset({"paymentKey", "associations"}) | WRITABLE | READ_ONLY


def _undecodable(text: str) -> tuple[str, str] | None:
    match = _UNDECODED.search(text)
    if match is None:
        return None
    byte = ord(match.group()) - 0xDC00
    return "INVALID_UTF8", (
        f"byte 0x{byte:02x} at character {match.start() + 1} is not UTF-8; nothing of the line was sent"
    )


def read_jsonl(stream: TextIO) -> Iterator[Line]:
    for number, text in enumerate(stream, start=1):
        text = text.strip()
        if not text:
            yield Line(number, None, ("BLANK", ""))
        elif problem := _undecodable(text):
            yield Line(number, None, problem)
        else:
            yield Line(number, text)


def read_csv(stream: TextIO) -> Iterator[Line]:
    reader = csv.DictReader(stream, strict=True)
    try:
        header = reader.fieldnames or []
    except csv.Error as error:
        raise FileProblem(f"line 1: the header is not readable as CSV: {error}") from None
    check_header(header)
    raw = reader.reader  # its line_num moves on a refused row too (the DictReader's does not)
    start = 2  # the header is line 1
    while True:
        # The loop goes on after a row the csv module refuses (a cell over its field limit, a
        # broken quote): the rows after it are read, and the refused lines are reported.
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            last = max(start, raw.line_num)
            yield Line(start, None, ("INVALID_CSV", f"not readable as CSV: {error}"), last)
            if raw.line_num < start:  # nothing consumed: the end of the input
                return
            start = raw.line_num + 1
            continue
        number, start = start, raw.line_num + 1
        if not any(value for value in row.values() if isinstance(value, str)) and None not in row:
            yield Line(number, None, ("BLANK", ""))
            continue
        yield _csv_line(number, row)


def check_header(header: Sequence[str]) -> None:
    """Refuse a header that would turn a typo into a custom property, or lose a column."""
    if not header:
        raise FileProblem("line 1: no header (the first line names the columns)")
    if problem := _undecodable(",".join(header)):
        raise FileProblem(f"line 1: the header: {problem[1]}")
    by_folded = {name.casefold(): name for name in KNOWN_COLUMNS}
    seen: set[str] = set()
    for column in header:
        if column in seen:
            raise FileProblem(f"line 1: column {column!r} appears twice")
        seen.add(column)
        known = by_folded.get(column.strip().casefold())
        if known is not None and known != column:
            raise FileProblem(
                f"line 1: column {column!r} differs from {known!r} only by case or spaces; "
                f"rename it (nothing was sent)"
            )


def _csv_line(number: int, row: dict[str | None, Any]) -> Line:
    if None in row:
        return Line(number, None, ("INVALID_CSV", "more cells than header columns"))
    if any(value is None for value in row.values()):
        return Line(number, None, ("INVALID_CSV", "fewer cells than header columns"))
    if problem := _undecodable("".join(row.values())):
        return Line(number, None, problem)
    body: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for column, value in row.items():
        if value == "":
            continue
        if column == "paymentKey":
            body["paymentKey"] = value
        elif column == "associations":
            try:
                body["associations"] = json.loads(value)
            except ValueError:
                return Line(number, None, ("INVALID_JSON", "associations: not valid JSON"))
        else:
            properties[column] = value
    body["properties"] = properties
    return Line(number, json.dumps(body, ensure_ascii=False, separators=(",", ":")))


def read_lines(path: Path, fmt: str | None = None) -> Iterator[Line]:
    """The file's lines; bytes that are not UTF-8 are kept (as surrogates) and reported per line."""
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    newline = "" if fmt == "csv" else None
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline=newline) as stream:
        yield from (read_csv(stream) if fmt == "csv" else read_jsonl(stream))


def synthetic_record(body: str, number: int) -> dict[str, Any]:
    """The SQS record the drain would receive for this body (what parse_record reads of it)."""
    return {
        "messageId": f"line-{number}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
    }


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
        refused = _SQS_REFUSED.search(line.body or "")
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
        if entry_size(entry) > MAX_MESSAGE_BYTES:
            raise ValueError(
                "MESSAGE_TOO_LARGE",
                f"the message is {entry_size(entry)} bytes, more than SQS's {MAX_MESSAGE_BYTES}",
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
        prog="python -m payments_drain.producer",
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
