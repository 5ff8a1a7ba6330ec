"""Reconcile: what HubSpot holds for a set of payments, proof an operator can script.

    python -m payments_drain.tools.reconcile [--file FILE]... [--payment-key K]... [--since T --until T]
                                       [--ledger-table NAME] [--unique-property NAME] [--quiet]
                                       [--base-url URL] [--api-version V] [--secret-id ID]
                                       [--rate-limit N]

The payments come from files (``--file``: JSON lines or CSV, one payment body per line as the
producer sends them, or failure reports as the failure-report queue holds them), from
``--payment-key``, or from the ledger (``--since``/``--until``: the payments it recorded as created
in that time). HubSpot is read with batch/read, 100 payments per request: by the unique property
(``HUBSPOT_UNIQUE_PROPERTY``), and by the HubSpot ids the ledger recorded (``--ledger-table``,
``LEDGER_TABLE_NAME``), which is the only way without a unique property. Each payment is then:

- ``expected``: present once, holding every value of its newest line (presence alone when only its
  key is known);
- ``stale``: present once, with other values (an older state; ``differs`` names the properties);
- ``missing``: HubSpot holds no record of it;
- ``twice``: two records (the one holding its key and another the ledger recorded, e.g. one
  created before the unique property was set up);
- ``unread``: not known (HubSpot did not answer after retries, or nothing to read it by).

Output: one JSON line per payment on stdout, then one ``{"summary": ...}`` line; a line of counts
on stderr. Exit code: 0 every payment as expected; 1 a payment stale, missing or twice; 2 a usage
error (one line on stderr); 3 nothing was found wrong but some payments are unread.

Reads are paced by the rate gate (``pacing.RateGate``: one request at a time, within what HubSpot's
rate-limit headers leave) and resent on 429, 5xx and no answer, with backoff (at most
``MAX_ATTEMPTS``). The same code serves the reconcile function (``functions/reconcile/app.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from payments_drain.adapters.hubspot import HubSpotClient
from payments_drain.adapters.ledger import DynamoLedger, LedgerUnavailable
from payments_drain.adapters.token import TokenUnavailable, cli_token
from payments_drain.core import clock
from payments_drain.core.batching import TRANSIENT, Answer, settle, whole_request_reason
from payments_drain.core.limits import HUBSPOT_BATCH_READ_INPUTS
from payments_drain.core.messages import KEY_PATTERN, MAX_KEY_CHARS, parse_record
from payments_drain.core.outcomes import Payment
from payments_drain.core.payment_files import FileProblem, read_lines, synthetic_record
from payments_drain.core.reading import Read, Record, differing, read_of
from payments_drain.core.tool_request import ToolRequest
from payments_drain.orchestration.attempts import backoff_s
from payments_drain.orchestration.config import DEFAULT_PROPERTY, Settings
from payments_drain.orchestration.pacing import RateGate

EXPECTED, STALE, MISSING, TWICE, UNREAD = "expected", "stale", "missing", "twice", "unread"
STATUSES = (EXPECTED, STALE, MISSING, TWICE, UNREAD)
MAX_ATTEMPTS = 5  # per read: the first and four resends after 429, 5xx or no answer
EXIT_OK, EXIT_DISCREPANCY, EXIT_USAGE, EXIT_UNREAD = 0, 1, 2, 3
SETTINGS = Settings.model_fields  # one home for the defaults shared with the drain


@dataclass(frozen=True)
class Expected:
    """A payment to look for: its key, and the values it should hold (None: presence only)."""

    key: str
    properties: dict[str, str] | None = None
    version: int | None = None


@dataclass
class Finding:
    key: str
    status: str
    hubspot_ids: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)
    ledger_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"paymentKey": self.key, "status": self.status, "hubspotIds": self.hubspot_ids}
        if self.differs:
            out["differs"] = self.differs
        if self.ledger_id:
            out["ledgerHubspotId"] = self.ledger_id
        return out


def classify(expected: Expected, records: list[Record], read: bool) -> Finding:
    """One payment's status from the distinct records found for it (pure)."""
    ids = sorted({r.id for r in records})
    if not read:
        return Finding(expected.key, UNREAD, ids)
    if not records:
        return Finding(expected.key, MISSING)
    if len(ids) > 1:
        return Finding(expected.key, TWICE, ids)
    differs = differing(expected.properties, records[0].properties) if expected.properties else []
    return Finding(expected.key, STALE if differs else EXPECTED, ids, differs)


def newest(payments: Iterable[Expected]) -> list[Expected]:
    """One per key: the highest version, else the last given (a file's lifecycle, in order). A bare
    key adds nothing to what a line says of the same payment."""
    out: dict[str, Expected] = {}
    for payment in payments:
        held = out.get(payment.key)
        if held is not None and payment.properties is None:
            continue
        versions = (payment.version, None if held is None else held.version)
        if held is None or held.properties is None or None in versions or versions[0] >= versions[1]:
            out[payment.key] = payment
    return list(out.values())


# --- reading -------------------------------------------------------------------------------------


class Reconciler:
    """Reads HubSpot (and the ledger) for a list of payments; ``time_left`` bounds it in Lambda."""

    def __init__(
        self,
        hubspot: HubSpotClient,
        token: str,
        unique_property: str | None,
        ledger: DynamoLedger | None = None,
        gate: RateGate | None = None,
        sleep: Callable[[float], None] = clock.sleep,
        time_left: Callable[[], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.hubspot = hubspot
        self.token = token
        self.unique_property = unique_property
        self.ledger = ledger
        self.gate = gate or RateGate(SETTINGS["HUBSPOT_RATE_LIMIT_PER_10S"].default)
        self.sleep = sleep
        self.time_left = time_left
        self.rng = rng or random.Random()
        self.requests = 0
        self.problems: list[str] = []  # why some reads failed (HubSpot's words, never the token)

    def run(self, payments: Sequence[Expected]) -> list[Finding]:
        keys = [p.key for p in payments]
        entries = self._ledger_entries(keys)
        ledger_ids = {k: e["hubspotId"] for k, e in entries.items() if isinstance(e.get("hubspotId"), str)}
        names = {n for p in payments for n in (p.properties or {})}
        if self.unique_property:
            names.add(self.unique_property)
        by_key = Read()
        if self.unique_property:
            by_key = self._read(keys, sorted(names), self.unique_property)
        # The records the ledger names that reading by key did not find (all of them without a
        # unique property): each is the payment, or a second record of it.
        extra = {k: i for k, i in ledger_ids.items() if i not in {r.id for r in by_key.found.get(k, [])}}
        by_id = self._read(sorted(set(extra.values())), sorted(names), None) if extra else Read()
        findings = []
        for payment in payments:
            key = payment.key
            records = by_key.found.get(key, []) + by_id.found.get(extra.get(key, ""), [])
            if self.unique_property:
                read = key not in by_key.unknown and (key not in extra or extra[key] not in by_id.unknown)
            else:  # only what the ledger recorded can be read
                read = key in extra and extra[key] not in by_id.unknown
            finding = classify(payment, records, read)
            finding.ledger_id = ledger_ids.get(key)
            findings.append(finding)
        return findings

    def _ledger_entries(self, keys: list[str]) -> dict[str, dict]:
        if self.ledger is None or not keys:
            return {}
        try:
            return self.ledger.entries(keys)
        except LedgerUnavailable as error:
            self.problems.append(str(error))
            return {}

    def _read(self, ids: list[str], names: list[str], id_property: str | None) -> Read:
        """Every id, 100 per request; the ids of a request that failed for good are unknown."""
        total = Read()
        size = HUBSPOT_BATCH_READ_INPUTS.value
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            answer = self._call(chunk, names, id_property)
            read = read_of(answer, chunk, id_property) if answer is not None else None
            if read is None:
                if answer is not None:
                    self._problem(answer)
                elif "the time ran out before every read" not in self.problems:
                    self.problems.append("the time ran out before every read")
                total.unknown.update(chunk)
                continue
            total.found.update(read.found)
            total.missing.update(read.missing)
            total.unknown.update(read.unknown)
        return total

    def _call(self, ids: list[str], names: list[str], id_property: str | None) -> Answer | None:
        """One read in a slot of the gate, resent on 429, 5xx or no answer; None when out of time."""
        answer = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            while (delay := self.gate.delay()) > 0:
                if not self._time_for(delay):
                    return answer
                self.sleep(delay)
            if not self._time_for(0.0):
                self.gate.cancel()
                return answer
            self.gate.started()
            left = self.time_left() if self.time_left is not None else None
            answer = self.hubspot.read_batch(ids, self.token, names, id_property, time_left_s=left)
            self.requests += 1
            # The drain's own rules for a whole answer: a 429 or a 5xx is transient (Retry-After).
            verdict = settle([], answer) if answer.status is None or answer.status >= 400 else None
            throttled = verdict.wait_s if answer.status == 429 and verdict is not None else 0.0
            self.gate.finished(answer.headers, throttled, answered=answer.status is not None)
            if verdict is None or verdict.action != TRANSIENT or attempt == MAX_ATTEMPTS:
                return answer
            wait = backoff_s(attempt, verdict.wait_s, self.rng.random())
            if not self._time_for(wait):
                return answer
            self.sleep(wait)
        return answer

    def _time_for(self, wait_s: float) -> bool:
        return self.time_left is None or self.time_left() > wait_s + self.hubspot.min_call_s()

    def _problem(self, answer: Answer) -> None:
        if answer.status is None:
            text = f"no answer from HubSpot ({answer.error})"
        else:
            reason = whole_request_reason(answer)
            text = f"HubSpot answered {answer.status} {reason.category}: {reason.message[:300]}"
        if text not in self.problems:
            self.problems.append(text)


def summary(findings: Sequence[Finding], requests: int) -> dict[str, Any]:
    counts = Counter(f.status for f in findings)
    return {"payments": len(findings), **{s: counts.get(s, 0) for s in STATUSES}, "hubspotRequests": requests}


def exit_code(findings: Sequence[Finding]) -> int:
    statuses = {f.status for f in findings}
    if statuses & {STALE, MISSING, TWICE}:
        return EXIT_DISCREPANCY
    return EXIT_UNREAD if UNREAD in statuses else EXIT_OK


# --- what to look for ----------------------------------------------------------------------------


class BadInput(ValueError):
    """A line or an option reconcile cannot use: the usage error's one line."""


def expected_of(item: Any, where: str, unique_property: str | None) -> Expected:
    """A payment body (docs/messages.md's message format) or a failure report, as an Expected."""
    if isinstance(item, dict) and isinstance(item.get("messageId"), str) and "reason" in item:
        key = item.get("paymentKey") or item["messageId"]
        payment = item.get("payment")
        body = payment if isinstance(payment, str) else json.dumps(payment)
        if isinstance(payment, dict) and payment.get("paymentKey") is None:
            body = json.dumps({**payment, "paymentKey": key})  # the key it was known by (as replay does)
    elif isinstance(item, dict) and isinstance(item.get("paymentKey"), str):
        key, body = item["paymentKey"], json.dumps(item)
    else:
        raise BadInput(f"{where}: neither a payment with a paymentKey nor a failure report")
    parsed = parse_record(synthetic_record(body, 0), unique_property)
    if isinstance(parsed, Payment):
        return Expected(str(key), dict(parsed.properties), parsed.version)
    return Expected(str(key))  # HubSpot could not take it as it is: whether it is there at all


def read_file(path: Path, unique_property: str | None) -> list[Expected]:
    out = []
    try:
        for line in read_lines(path):
            if line.problem is not None:
                if line.problem[0] == "BLANK":
                    continue
                raise BadInput(f"{path} line {line.number}: {line.problem[1]}")
            try:
                item = json.loads(line.body or "")
            except ValueError:
                raise BadInput(f"{path} line {line.number}: not valid JSON") from None
            out.append(expected_of(item, f"{path} line {line.number}", unique_property))
    except FileProblem as error:
        raise BadInput(f"{path}: {error}") from None
    except OSError as error:
        raise BadInput(f"{path}: {error.strerror or error}") from None
    return out


class ReconcileRequest(ToolRequest):
    """What to reconcile (``ToolRequest``: the CLI's flags, the function's event keys)."""

    payment_key: list[Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS, pattern=KEY_PATTERN)]] = []
    payments: list[Any] = []  # payment bodies or failure reports, as a file's lines
    # The function returns this many findings not as expected.
    show: Annotated[int, Field(ge=0, le=1000)] = 100

    @model_validator(mode="after")
    def _both_or_neither(self) -> ReconcileRequest:
        if (self.since is None) != (self.until is None):
            raise ValueError("since and until go together (the ledger's time range)")
        return self


def gather(
    request: ReconcileRequest,
    unique_property: str | None,
    ledger: DynamoLedger | None,
    files: Sequence[Path] = (),
) -> list[Expected]:
    """Every payment the request names, newest line per key; BadInput for what cannot be used."""
    found: list[Expected] = []
    for path in files:
        found += read_file(path, unique_property)
    for number, item in enumerate(request.payments, start=1):
        found.append(expected_of(item, f"payments[{number}]", unique_property))
    found += [Expected(key) for key in request.payment_key]
    if request.since is not None and request.until is not None:
        if ledger is None:
            raise BadInput("--since/--until read the ledger: give --ledger-table (or LEDGER_TABLE_NAME)")
        try:
            keys = ledger.created_between(int(request.since.timestamp()), int(request.until.timestamp()))
        except LedgerUnavailable as error:
            raise BadInput(str(error)) from None
        found += [Expected(key) for key in keys]
        if not found:
            raise BadInput(
                f"the ledger recorded no payment created between {request.since.isoformat()} and "
                f"{request.until.isoformat()}; with a unique property in create mode (the template's "
                "default) it records none: reconcile by --file or --payment-key"
            )
    if not found:
        raise BadInput("nothing to reconcile: give --file, --payment-key, or --since and --until")
    return newest(found)


# --- command line --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr, exit 2 (argparse would add the usage)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = _Parser(
        prog="python -m payments_drain.tools.reconcile",
        description="Say, per payment, what HubSpot holds: expected, stale, missing, twice or unread.",
    )
    p.add_argument(
        "--file",
        action="append",
        type=Path,
        default=[],
        help="JSON lines or CSV: payments or failure reports (repeatable)",
    )
    p.add_argument("--payment-key", action="append", default=[], help="a paymentKey (repeatable)")
    p.add_argument(
        "--since", help="the ledger's payments created at or after this ISO 8601 time (UTC if no zone)"
    )
    p.add_argument("--until", help="... and before this one")
    p.add_argument(
        "--ledger-table",
        default=env("LEDGER_TABLE_NAME") or None,
        help="the ledger table (default $LEDGER_TABLE_NAME)",
    )
    p.add_argument(
        "--unique-property",
        default=env("HUBSPOT_UNIQUE_PROPERTY", DEFAULT_PROPERTY),
        help=f"the unique property HubSpot is read by (default $HUBSPOT_UNIQUE_PROPERTY or {DEFAULT_PROPERTY}; "
        '"" reads by the ids the ledger recorded only)',
    )
    p.add_argument("--base-url", default=env("HUBSPOT_BASE_URL") or SETTINGS["HUBSPOT_BASE_URL"].default)
    p.add_argument(
        "--api-version", default=env("HUBSPOT_API_VERSION") or SETTINGS["HUBSPOT_API_VERSION"].default
    )
    p.add_argument(
        "--secret-id",
        default=env("HUBSPOT_TOKEN_SECRET_ID"),
        help="the token's secret, when HUBSPOT_TOKEN is not set",
    )
    p.add_argument(
        "--rate-limit",
        type=int,
        default=int(env("HUBSPOT_RATE_LIMIT_PER_10S") or SETTINGS["HUBSPOT_RATE_LIMIT_PER_10S"].default),
        help="the app's HubSpot limit per 10 s (default $HUBSPOT_RATE_LIMIT_PER_10S or "
        f"{SETTINGS['HUBSPOT_RATE_LIMIT_PER_10S'].default})",
    )
    p.add_argument("--quiet", action="store_true", help="no line of counts on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:  # the drain's own rules for these values; the two it needs and reconcile does not: placeholders
        settings = Settings.model_validate(
            {
                "HUBSPOT_TOKEN_SECRET_ID": "-",
                "FAILURE_QUEUE_URL": "https://-",
                "LEDGER_TABLE_NAME": args.ledger_table or "",
                "HUBSPOT_BASE_URL": args.base_url,
                "HUBSPOT_API_VERSION": args.api_version,
                "HUBSPOT_UNIQUE_PROPERTY": args.unique_property,
                "HUBSPOT_RATE_LIMIT_PER_10S": args.rate_limit,
            }
        )
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        option = {
            "LEDGER_TABLE_NAME": "--ledger-table",
            "HUBSPOT_BASE_URL": "--base-url",
            "HUBSPOT_API_VERSION": "--api-version",
            "HUBSPOT_UNIQUE_PROPERTY": "--unique-property",
            "HUBSPOT_RATE_LIMIT_PER_10S": "--rate-limit",
        }.get(str(first["loc"][0]) if first["loc"] else "", "option")
        p.error(f"{option}: {first['msg'].removeprefix('Value error, ')}")
    try:
        request = ReconcileRequest(payment_key=args.payment_key, since=args.since, until=args.until)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = f"--{str(first['loc'][0]).replace('_', '-')}" if first["loc"] else "--since/--until"
        p.error(f"{where}: {first['msg'].removeprefix('Value error, ')}")
    ledger = DynamoLedger(settings.LEDGER_TABLE_NAME) if settings.ledger_enabled else None
    try:
        payments = gather(request, settings.unique_property, ledger, args.file)
        token = cli_token(os.environ.get("HUBSPOT_TOKEN"), args.secret_id)
    except BadInput as error:
        p.error(str(error))
    except TokenUnavailable as error:
        print(f"reconcile: {error}", file=sys.stderr)
        return EXIT_USAGE
    if token is None:
        p.error("set HUBSPOT_TOKEN, or --secret-id (HUBSPOT_TOKEN_SECRET_ID) naming the token's secret")
    reconciler = Reconciler(
        HubSpotClient(settings.HUBSPOT_BASE_URL, settings.HUBSPOT_API_VERSION),
        token,
        settings.unique_property,
        ledger,
        RateGate(settings.HUBSPOT_RATE_LIMIT_PER_10S),
    )
    findings = reconciler.run(payments)
    for finding in findings:
        print(json.dumps(finding.as_dict(), ensure_ascii=False))
    counts = summary(findings, reconciler.requests)
    print(json.dumps({"summary": {**counts, "problems": reconciler.problems}}, ensure_ascii=False))
    if not args.quiet:
        print(
            f"reconcile: {counts['payments']} payments: {counts[EXPECTED]} as expected, {counts[STALE]} stale, "
            f"{counts[MISSING]} missing, {counts[TWICE]} twice, {counts[UNREAD]} unread",
            file=sys.stderr,
        )
        for problem in reconciler.problems:
            print(f"reconcile: {problem}", file=sys.stderr)
    return exit_code(findings)


if __name__ == "__main__":
    sys.exit(main())
