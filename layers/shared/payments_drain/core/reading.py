"""Pure core: what a HubSpot batch/read answer says HubSpot holds, and whether it holds what a
payment says. Used by ``reconcile`` (proof for an operator) and by the chunk sender (a chunk whose
answer was lost, read back by the unique property instead of sent again blindly).

batch/read answers 200 when it found every input and 207 when it did not: the inputs it did not
find are named in an error of category ``OBJECT_NOT_FOUND`` by ``context.ids`` (docs/hubspot.md,
"Batch read"). Results come in no guaranteed order; each carries the properties asked for, so a
result read by the unique property is matched to its input by that property's value, and one read
by HubSpot id by its ``id``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from payments_drain.core.batching import Answer
from payments_drain.core.messages import AMOUNTS, DATES, EPOCH_MILLIS
from payments_drain.core.outcomes import Outcome, Payment, Reason, State

NOT_FOUND = "OBJECT_NOT_FOUND"


@dataclass(frozen=True, slots=True)
class Record:
    """One payment record as batch/read shows it."""

    id: str
    properties: dict[str, Any]
    created_at: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True)
class Read:
    """What one batch/read said about the ids it was asked: the records found for each, the ids
    HubSpot named as not found, and the ids it said nothing about (neither found nor named)."""

    found: dict[str, list[Record]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)


def read_of(answer: Answer, asked: Iterable[str], id_property: str | None = None) -> Read | None:
    """The answer to a batch/read of ``asked`` (values of ``id_property``, or HubSpot ids), or None
    when it does not say what HubSpot holds (any other status, a body that cannot be read)."""
    body = answer.body
    if answer.status not in (200, 207) or not isinstance(body, dict):
        return None
    results, errors = body.get("results"), body.get("errors", [])
    if not isinstance(results, list) or not isinstance(errors, list):
        return None
    asked = list(dict.fromkeys(asked))
    wanted = set(asked)
    found: dict[str, list[Record]] = {}
    for result in results:
        if not isinstance(result, dict) or result.get("id") is None:
            return None
        properties = result.get("properties") if isinstance(result.get("properties"), dict) else {}
        key = str(properties.get(id_property)) if id_property else str(result["id"])
        if key in wanted:
            found.setdefault(key, []).append(
                Record(str(result["id"]), dict(properties), result.get("createdAt"), result.get("updatedAt"))
            )
    missing: set[str] = set()
    for error in errors:
        context = error.get("context") if isinstance(error, dict) else None
        ids = context.get("ids") if isinstance(context, dict) else None
        if isinstance(error, dict) and error.get("category") == NOT_FOUND and isinstance(ids, list):
            missing.update(str(i) for i in ids if str(i) in wanted and str(i) not in found)
    unknown = {key for key in asked if key not in found and key not in missing}
    return Read(found, missing, unknown)


def differing(expected: Mapping[str, str], held: Mapping[str, Any]) -> list[str]:
    """The names of the properties whose value HubSpot holds differs from ``expected`` (the payment's,
    as the drain sends it). HubSpot may write a value back in its own form, so amounts compare as
    numbers and dates as instants; anything else as text. Names only: values are customer data."""
    return sorted(name for name, value in expected.items() if not _same(name, value, held.get(name)))


def _same(name: str, sent: str, held: Any) -> bool:
    if held is None:  # no value: HubSpot clears a property given "" (docs/hubspot.md, batch read)
        return sent == ""
    held = str(held)
    if sent == held:
        return True
    if name in AMOUNTS:
        return _number(sent) is not None and _number(sent) == _number(held)
    if name in DATES:
        return _instant(sent) is not None and _instant(sent) == _instant(held)
    return False


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _instant(text: str) -> datetime | None:
    if EPOCH_MILLIS.fullmatch(text):
        return datetime.fromtimestamp(int(text) / 1000, timezone.utc)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


CREATED_BEFORE = Reason(
    "CREATED_BEFORE_SENT", "HubSpot's record of this paymentKey was created before this message was sent"
)
CREATED_BY_ANOTHER = Reason(
    "CREATED_BY_ANOTHER_MESSAGE", "HubSpot's record of this paymentKey holds another message's values"
)


def applied(part: Sequence[Payment], read: Read, id_property: str, upsert: bool) -> dict[str, Outcome]:
    """The payments of a chunk whose answer was lost that the read-back shows stored, as created
    outcomes (by message id). Create mode: the record holding the payment's key is that payment (the
    key is unique, and only its own create sets it), but not always this message's: made before this
    message was sent, or holding other values than this message's (a corrected resend in flight at
    the same time), another message of the payment created it (the ledger claims none under the
    unique property, so later messages of a payment reach HubSpot): a duplicate. A copy with the
    same values made while this one was in flight cannot be told from this one's own (batch/read
    gives no trace id): created. Upsert mode: the record must also hold every value this message
    writes, else an older write is what HubSpot holds and the message is sent again. ``updated``:
    the record was written before this message's write (its times differ)."""
    out: dict[str, Outcome] = {}
    for payment in part:
        records = read.found.get(payment.payment_key)
        if not records:
            continue
        record = records[0]
        sent = {k: v for k, v in payment.properties.items() if k != id_property}
        if not upsert:
            if _before(record.created_at, payment.message.sent_ms):
                out[payment.message_id] = Outcome(State.DUPLICATE, CREATED_BEFORE, record.id)
            elif differing(sent, record.properties):
                out[payment.message_id] = Outcome(State.DUPLICATE, CREATED_BY_ANOTHER, record.id)
            else:
                out[payment.message_id] = Outcome(State.CREATED, hubspot_id=record.id)
            continue
        if differing(sent, record.properties):
            continue
        updated = record.created_at != record.updated_at
        out[payment.message_id] = Outcome(State.CREATED, hubspot_id=record.id, updated=updated)
    return out


def _before(created_at: str | None, sent_ms: int | None) -> bool:
    """Whether HubSpot made the record before the message was sent (HubSpot's and SQS's clocks)."""
    created = _instant(created_at) if created_at else None
    return created is not None and sent_ms is not None and created.timestamp() * 1000 < sent_ms
