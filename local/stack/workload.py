"""Stands in for the producers: generated payment messages, realistic valid ones plus invalid ones.

Every message is one payment (docs/messages.md). A share of them is invalid, in varied
ways the drain must reject (and report) rather than retry:

    malformed_json, missing_amount, non_numeric_amount, unknown_property, bad_currency,
    bad_enum_option, wrong_types

``generate(count, invalid_share, seed)`` is deterministic for a seed. Each :class:`WorkItem` knows
its ``kind`` ("valid" or one of the above) and its ``payment_key`` (None for malformed JSON, whose
key is then the SQS message id).

A payment's lifecycle (``lifecycle_share``): for that share of the valid payments the producer sends
more than one message, each with a growing top-level ``version`` (the processor's event time in
milliseconds): ``processing`` first, then ``succeeded``, and for half of them ``refunded``. A third
of them also has an older version sent again after the newest one (a late, out-of-order
redelivery). The ``count`` payments' first messages come first, in order; the updates follow,
then the late copies. A :class:`WorkItem`'s ``role`` says which it is: ``first``, ``update`` (a
newer version) or ``late`` (an older version, again). :func:`waves` splits them as a producer
sends them over time: the payments, each round of updates, then the late copies.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

INVALID_KINDS = (
    "malformed_json",
    "missing_amount",
    "non_numeric_amount",
    "unknown_property",
    "bad_currency",
    "bad_enum_option",
    "wrong_types",
)

_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "PLN", "CAD", "AUD", "JPY")
_METHODS = ("card", "ach", "sepa", "wire_transfer", "check", "cash", "bacs")
_STATUSES = ("succeeded", "succeeded", "succeeded", "processing", "partially_refunded")
_BANKS = ("Visa", "Mastercard", "Amex", "ING", "Barclays", "Chase", "BNP Paribas")
_NAMES = ("ana", "ben", "chloe", "dev", "emma", "farid", "gus", "hana", "ivan", "jo")


LIFECYCLE = ("processing", "succeeded", "refunded")  # hs_latest_status by version


@dataclass(frozen=True)
class WorkItem:
    body: str
    kind: str  # "valid" or an INVALID_KINDS entry
    payment_key: str | None
    version: int | None = None  # the body's top-level "version", when it has one
    role: str = "first"  # a payment's first message, a newer version ("update"), an older one again ("late")
    line: int | None = None  # --file: the line of the file it was read from

    @property
    def valid(self) -> bool:
        return self.kind == "valid"


def _valid_payment(rng: random.Random, key: str, when: datetime) -> dict:
    currency = rng.choice(_CURRENCIES)
    amount = rng.randint(100, 500_000) / 100 if currency != "JPY" else rng.randint(100, 50_000)
    props = {
        "hs_initial_amount": f"{amount:.2f}" if currency != "JPY" else str(int(amount)),
        "hs_initiated_date": (when - timedelta(seconds=rng.randint(0, 86_400 * 30))).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "hs_currency_code": currency,
        "hs_latest_status": rng.choice(_STATUSES),
        "hs_payment_method_type": rng.choice(_METHODS),
        "hs_reference_number": f"INV-{rng.randint(10_000, 99_999)}",
    }
    if rng.random() < 0.6:
        props["hs_customer_email"] = f"{rng.choice(_NAMES)}.{rng.randint(1, 999)}@example.com"
    if props["hs_payment_method_type"] == "card":
        props["hs_payment_method_bank_or_issuer"] = rng.choice(_BANKS)
        props["hs_payment_method_last_4"] = f"{rng.randint(0, 9999):04d}"
    if rng.random() < 0.3:
        props["hs_fees_amount"] = f"{rng.randint(10, 900) / 100:.2f}"
    if rng.random() < 0.2:
        props["hs_internal_comment"] = "imported from the billing system"
    body: dict = {"paymentKey": key, "properties": props}
    if rng.random() < 0.25:
        body["associations"] = [
            {
                "to": {"id": str(rng.randint(1000, 999_999))},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}],
            }
        ]
    return body


def _invalid(rng: random.Random, kind: str, key: str, when: datetime) -> tuple[str, str | None]:
    body = _valid_payment(rng, key, when)
    props = body["properties"]
    if kind == "malformed_json":
        text = json.dumps(body)
        return rng.choice(
            [text[: len(text) // 2], text.replace('"', "'"), "not json at all", text + "}"]
        ), None
    if kind == "missing_amount":
        del props["hs_initial_amount"]
    elif kind == "non_numeric_amount":
        props["hs_initial_amount"] = rng.choice(["twelve", "12,50 EUR", "N/A", "1.2.3"])
    elif kind == "unknown_property":
        props[rng.choice(["hs_not_a_property", "hs_amount", "hs_payment_status"])] = "x"
    elif kind == "bad_currency":
        props["hs_currency_code"] = rng.choice(["EURO", "XYZ", "usd", "€"])
    elif kind == "bad_enum_option":
        field, value = rng.choice(
            [
                ("hs_payment_method_type", "bitcoin"),
                ("hs_latest_status", "paid"),
                ("hs_payment_method_type", "Card"),
            ]
        )
        props[field] = value
    elif kind == "wrong_types":
        choice = rng.randrange(3)
        if choice == 0:
            props["hs_initial_amount"] = True  # a boolean: neither a string nor a number
        elif choice == 1:
            body["properties"] = [["hs_initial_amount", "1.00"]]  # not an object
        else:
            body["associations"] = {"to": "1234"}  # not a list
    else:
        raise ValueError(f"unknown invalid kind {kind!r}")
    return json.dumps(body), key


def generate(
    count: int = 2000,
    invalid_share: float = 0.03,
    seed: int = 1,
    lifecycle_share: float = 0.0,
) -> list[WorkItem]:
    """``count`` payments, ``round(count * invalid_share)`` of them invalid (kinds in rotation), and for
    ``round(valid * lifecycle_share)`` of the valid ones their status updates and late copies (the
    module's docstring). A quarter of the valid payments link to a contact (in upsert mode the drain
    writes those links through HubSpot's associations API)."""
    if not 0 <= invalid_share <= 1 or not 0 <= lifecycle_share <= 1:
        raise ValueError("invalid_share and lifecycle_share must be between 0 and 1")
    rng = random.Random(seed)
    when = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
    n_invalid = round(count * invalid_share)
    invalid_positions = set(rng.sample(range(count), n_invalid)) if n_invalid else set()
    items: list[WorkItem] = []
    k = 0
    for i in range(count):
        key = f"pay_{seed}_{i:06d}"
        if i in invalid_positions:
            kind = INVALID_KINDS[k % len(INVALID_KINDS)]
            k += 1
            text, pkey = _invalid(rng, kind, key, when)
            items.append(WorkItem(text, kind, pkey))
        else:
            items.append(WorkItem(json.dumps(_valid_payment(rng, key, when)), "valid", key))
    valid = [n for n, it in enumerate(items) if it.valid]
    changing = sorted(rng.sample(valid, round(len(valid) * lifecycle_share)))
    updates: list[list[WorkItem]] = [[], []]
    late: list[WorkItem] = []
    for j, n in enumerate(changing):
        versions = _lifecycle(json.loads(items[n].body), steps=3 if j % 2 == 0 else 2)
        items[n] = versions[0]
        for step, item in enumerate(versions[1:]):
            updates[step].append(item)
        if j % 3 == 0:  # the one before the newest, once more, after it
            older = versions[-2]
            late.append(WorkItem(older.body, "valid", older.payment_key, older.version, "late"))
    return items + updates[0] + updates[1] + late


def _lifecycle(body: dict, steps: int) -> list[WorkItem]:
    """A payment's messages: ``processing``, ``succeeded`` and maybe ``refunded``, versions growing."""
    props = body["properties"]
    started = int(datetime.fromisoformat(props["hs_initiated_date"]).timestamp() * 1000)  # ends in Z: UTC
    out = []
    for step, status in enumerate(LIFECYCLE[:steps]):
        changed = {**props, "hs_latest_status": status}
        if status == "refunded":
            changed["hs_refunds_amount"] = props["hs_initial_amount"]
        version = started + step * 3_600_000  # an hour between events
        text = json.dumps({**body, "version": version, "properties": changed})
        out.append(WorkItem(text, "valid", body["paymentKey"], version, "first" if step == 0 else "update"))
    return out


def waves(items: list[WorkItem]) -> list[list[WorkItem]]:
    """The items in the order a producer sends them over time: every payment's first message, then
    its first update, its second, ..., then the late copies; no wave holds two messages of a payment."""
    out: list[list[WorkItem]] = [[]]
    late: list[WorkItem] = []
    updates_of: dict[str | None, int] = {}
    for item in items:
        if item.role == "late":
            late.append(item)
            continue
        n = updates_of.get(item.payment_key, 0) + 1 if item.role == "update" else 0
        updates_of[item.payment_key] = n
        while len(out) <= n:
            out.append([])
        out[n].append(item)
    return [wave for wave in out + [late] if wave]


@dataclass(frozen=True)
class Refused:
    """A line of ``--file`` that cannot be sent (bytes that are not UTF-8, a CSV row the csv module
    refuses, a character SQS refuses): reported by the run with its line number, never sent."""

    line: int
    code: str
    message: str
    last: int | None = None  # the last physical line of a problem spanning several

    def as_dict(self) -> dict:
        where = (
            {"line": self.line}
            if self.last in (None, self.line)
            else {"line": self.line, "lastLine": self.last}
        )
        return {**where, "code": self.code, "message": self.message}


@dataclass
class PaymentFile:
    """``--file`` as the producer reads it: the lines sent, the lines refused, the blank lines skipped."""

    items: list[WorkItem]
    refused: list[Refused]
    blank: int


def from_file(path: str | Path, fmt: str | None = None) -> PaymentFile:
    """The payment file read by the producer's own reader (``payments_drain.core.payment_files``:
    JSON lines, or CSV by the ``.csv`` extension), so that every line ends sent or reported the same
    way in both. Unlike the producer, the run sends the lines the drain will reject (that is what it
    shows); it refuses only what cannot travel on SQS at all. Raises ``FileProblem`` for a CSV
    header that makes the whole file unreadable as payments."""
    from payments_drain.adapters.sqs_batches import NOT_SQS_TEXT
    from payments_drain.core.payment_files import read_lines

    out = PaymentFile([], [], 0)
    for line in read_lines(Path(path), fmt):
        if line.problem is not None and line.problem[0] == "BLANK":
            out.blank += 1
        elif line.body is None:
            code, message = line.problem or ("UNREADABLE", "")
            out.refused.append(Refused(line.number, code, message, line.last))
        elif refused := NOT_SQS_TEXT.search(line.body):
            out.refused.append(
                Refused(
                    line.number,
                    "INVALID_CHARACTER",
                    f"character U+{ord(refused.group()):04X} at {refused.start() + 1} is not allowed "
                    "in an SQS message",
                )
            )
        else:
            out.items.append(WorkItem(line.body, "file", _payment_key(line.body), line=line.number))
    return out


def _payment_key(body: str) -> str | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    key = value.get("paymentKey") if isinstance(value, dict) else None
    return key if isinstance(key, str) else None
