"""Pure core: a producer's payment file read line by line (JSON lines or CSV), each line a message
body or the reason it cannot be one. The producer tool and the local run's ``--file`` read files
with it, so that every line of a file ends sent or reported the same way in both."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from payments_drain.core.messages import READ_ONLY, WRITABLE


@dataclass(frozen=True, slots=True)
class Line:
    """One payment of the input file: its line number and its message body (or why it has none)."""

    number: int
    body: str | None
    problem: tuple[str, str] | None = None  # (code, message) when the line cannot become a body
    last: int | None = None  # the last physical line of a problem spanning several


class FileProblem(ValueError):
    """The file as a whole cannot be read as payments (a bad CSV header): nothing is sent."""


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
    # The csv module's plain reader, not its DictReader: the DictReader skips a blank line without
    # a word, and every line number after it would be one short.
    raw = csv.reader(stream, strict=True)
    try:
        header = next(raw, [])
    except csv.Error as error:
        raise FileProblem(f"line 1: the header is not readable as CSV: {error}") from None
    check_header(header)
    start = 2  # the header is line 1; line_num moves on a refused row too
    while True:
        # The loop goes on after a row the csv module refuses (a cell over its field limit, a
        # broken quote): the rows after it are read, and the refused lines are reported.
        try:
            cells = next(raw)
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
        if not any(cells) and len(cells) <= len(header):  # ",," is blank too; more cells than columns is not
            yield Line(number, None, ("BLANK", ""))
            continue
        yield _csv_line(number, _row(header, cells))


def _row(header: Sequence[str], cells: list[str]) -> dict[str | None, Any]:
    """The cells by column, as the DictReader gives them: the surplus under None, missing ones None."""
    row: dict[str | None, Any] = {column: None for column in header}
    row.update(zip(header, cells))
    if len(cells) > len(header):
        row[None] = cells[len(header) :]
    return row


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
