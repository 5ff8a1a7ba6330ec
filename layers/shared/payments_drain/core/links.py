"""Pure core for upsert mode's links: plan the associations API calls of written payments, settle
HubSpot's answer to one, and fold the links' outcomes into each payment's.

HubSpot's ``batch/upsert`` takes no associations, so in upsert mode a payment's links are written
after its record, through the associations API (docs/hubspot.md, "Links in upsert mode"): one
``batch/create`` per target object type, from the payment's HubSpot id to each target id, with the
message's own association types. Writing a link that exists changes nothing, so a link call may be
sent again whenever its outcome is unknown. No I/O here: ``sender`` makes the calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from payments_drain.core.batching import (
    SETTLED,
    SPLIT,
    TRANSIENT,
    UNREADABLE,
    Answer,
    Verdict,
    is_unknown_object_type,
    results_shape,
    settle,
    whole_request_reason,
)
from payments_drain.core.limits import HUBSPOT_BATCH_INPUTS
from payments_drain.core.outcomes import Outcome, Payment, Reason, State

# HubSpot's default (HUBSPOT_DEFINED) association type ids from a payment, by target object type
# (docs/hubspot.md, "Payment properties"): the one home of this table.
DEFAULT_TYPE_IDS = {
    "contacts": 387,
    "companies": 389,
    "deals": 391,
    "subscriptions": 393,
    "line_items": 395,
    "quotes": 397,
    "discounts": 428,
    "orders": 524,
    "invoices": 542,
    "tickets": 1354,
}
TARGET_OF_DEFAULT_TYPE = {type_id: target for target, type_id in DEFAULT_TYPE_IDS.items()}
OBJECT_TYPE_PATTERN = r"^([a-z][a-z0-9_]{0,99}|[0-9]+-[0-9]+)$"
# HubSpot documents no input limit for the associations batch create (only 1,000 for its batch
# read: limits.HUBSPOT_ASSOCIATION_READ_INPUTS); the drain keeps to the CRM batch limit.
LINKS_PER_CALL = HUBSPOT_BATCH_INPUTS.value

LINKS_PENDING = "LINKS_PENDING"  # retry: the record is written, a link is not yet
LINK_REJECTED = "LINK_REJECTED"  # rejected: the record is written, a link can never be
LINK_TARGET_NOT_FOUND = "LINK_TARGET_NOT_FOUND"  # HubSpot holds no record with the target id
LINK_TYPE_INVALID = "LINK_TYPE_INVALID"  # the association type does not exist for this pair
LINK_REFUSED = "LINK_REFUSED"  # any other refusal for good (e.g. an account's association rule)
_NUMBER = re.compile(r"\d+")


def target_type(association: Mapping[str, Any]) -> str | None:
    """The object type an association points to: its ``toObjectType``, else the one HubSpot's
    default type id names; None when neither says (a label of the account's own)."""
    if association.get("toObjectType"):
        return str(association["toObjectType"])
    for spec in association.get("types") or ():
        if spec.get("associationCategory") == "HUBSPOT_DEFINED":
            found = TARGET_OF_DEFAULT_TYPE.get(spec.get("associationTypeId"))
            if found is not None:
                return found
    return None


@dataclass(frozen=True, slots=True)
class Link:
    """One input of a link call. ``message_id`` is this input's own key (``key``), so that the
    chunk sender's loop, which settles by message id, settles links input by input."""

    key: str
    hubspot_id: str
    to_id: str
    types: tuple[dict[str, Any], ...]

    @property
    def message_id(self) -> str:
        return self.key

    def hubspot_input(self) -> dict[str, Any]:
        return {"from": {"id": self.hubspot_id}, "to": {"id": self.to_id}, "types": list(self.types)}


@dataclass(frozen=True, slots=True)
class LinkCall:
    to_type: str
    links: list[Link]


def plan(written: Iterable[tuple[Payment, str]]) -> list[LinkCall]:
    """The link calls for payments whose record HubSpot holds (payment, its HubSpot id): grouped
    by target object type, at most ``LINKS_PER_CALL`` inputs each."""
    by_type: dict[str, list[Link]] = {}
    for payment, hubspot_id in written:
        for i, association in enumerate(payment.associations):
            to_type = target_type(association)
            if to_type is None:  # messages refuses these in upsert mode: never planned
                continue
            link = Link(
                f"{payment.message_id}#{i}",
                hubspot_id,
                str(association["to"]["id"]),
                tuple(association["types"]),
            )
            by_type.setdefault(to_type, []).append(link)
    return [
        LinkCall(to_type, links[i : i + LINKS_PER_CALL])
        for to_type, links in by_type.items()
        for i in range(0, len(links), LINKS_PER_CALL)
    ]


def calls_needed(payments: Iterable[Payment]) -> int:
    """How many link calls these payments' associations take (for the rate gate's claim)."""
    counts: dict[str, int] = {}
    for payment in payments:
        for association in payment.associations:
            to_type = target_type(association)
            if to_type is not None:
                counts[to_type] = counts.get(to_type, 0) + 1
    return sum(-(-n // LINKS_PER_CALL) for n in counts.values())


def settle_links(links: Sequence[Link], answer: Answer) -> Verdict:
    """What one answer of the associations API means for each link. A 2xx proves a link by a
    result naming its pair, and refuses one by an error naming its target (or its payment); a
    link neither proven nor refused is sent again (writing a link twice changes nothing). A
    whole-request 400 that names some links refuses those and the rest go again; one that names
    none is halved, as for records. Anything else is the records' rule (``batching.settle``)."""
    status = answer.status
    if status is not None and 200 <= status < 300 and not isinstance(answer.body, dict):
        reason = Reason(UNREADABLE, f"HubSpot answered {status} with a body that cannot be read", status)
        return Verdict(TRANSIENT, reason=reason, wait_s=0.5)  # sent again: a link written twice is one
    if status is not None and 200 <= status < 300:
        outcomes: dict[str, Outcome] = {}
        correlation = answer.header("X-HubSpot-Correlation-Id")
        for error in _errors(answer.body):
            for link in _named(links, error):
                outcomes.setdefault(link.key, _refusal(error, status, correlation))
        proven = {
            (str(r.get("fromObjectId")), str(r.get("toObjectId")))
            for r in answer.body.get("results") or []
            if isinstance(r, dict)
        }
        for link in links:
            if link.key in outcomes:
                continue
            if (link.hubspot_id, link.to_id) in proven:
                outcomes[link.key] = Outcome(State.CREATED, hubspot_id=link.hubspot_id)
            else:
                reason = Reason(LINKS_PENDING, "HubSpot's answer neither wrote nor refused this link")
                outcomes[link.key] = Outcome(State.RETRY, reason)
        return Verdict(SETTLED, outcomes)
    if status == 400 and isinstance(answer.body, dict):
        reason = whole_request_reason(answer)
        if is_unknown_object_type(status, reason):  # the message's toObjectType: every link of the call
            refused = Reason(
                LINK_REJECTED, reason.message, status, LINK_TYPE_INVALID, reason.hubspot_correlation_id
            )
            return Verdict(SETTLED, {link.key: Outcome(State.REJECTED, refused) for link in links}, reason)
        named = {link.key for link in _named(links, answer.body)}
        for error in _errors(answer.body):
            named |= {link.key for link in _named(links, error)}
        if named:
            refused = _refusal(answer.body, status, reason.hubspot_correlation_id)
            return Verdict(
                SETTLED, {key: refused for key in named}, reason, resend_rest=len(named) < len(links)
            )
        if len(links) > 1:
            return Verdict(SPLIT, reason=reason)
        return Verdict(SETTLED, {links[0].key: _refusal(answer.body, status, None)}, reason)
    return settle(links, answer)  # type: ignore[arg-type] - links settle by message_id like payments


def _errors(body: Any) -> list[dict[str, Any]]:
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _named(links: Sequence[Link], error: Any) -> list[Link]:
    """The links an error names, by the whole numbers in its context: those whose target id is
    among them (HubSpot's ``INVALID_OBJECT_IDS`` says ``TYPE=id``), narrowed to the payment when
    its HubSpot id is there too; else those whose payment's HubSpot id is (every link of it)."""
    context = error.get("context") if isinstance(error, dict) else None
    if not isinstance(context, dict):
        return []
    numbers: set[str] = set()
    for values in context.values():
        for value in values if isinstance(values, list) else [values]:
            numbers.update(_NUMBER.findall(str(value)))
    by_target = [link for link in links if link.to_id in numbers]
    by_both = [link for link in by_target if link.hubspot_id in numbers]
    return by_both or by_target or [link for link in links if link.hubspot_id in numbers]


def _refusal(error: dict[str, Any], status: int | None, correlation: str | None) -> Outcome:
    """A link HubSpot refused: for good on a validation error (with HubSpot's own message), else
    sent again later."""
    category = str(error.get("category") or "UNKNOWN")
    message = str(error.get("message") or category)[:1000]
    if category != "VALIDATION_ERROR":
        return Outcome(State.RETRY, Reason(LINKS_PENDING, message, status, category, correlation))
    return Outcome(State.REJECTED, Reason(LINK_REJECTED, message, status, _code(error), correlation))


def _code(error: dict[str, Any]) -> str:
    context = error.get("context") if isinstance(error.get("context"), dict) else {}
    details = error.get("errors") if isinstance(error.get("errors"), list) else []
    words = " ".join(
        [str(error.get("subCategory") or ""), *context]
        + [str(d.get("code") or d.get("subCategory") or "") for d in details if isinstance(d, dict)]
    ).upper()
    if "INVALID_OBJECT_ID" in words or "OBJECT_NOT_FOUND" in words:
        return LINK_TARGET_NOT_FOUND
    if "ASSOCIATION_TYPE" in words or "TYPEID" in words or "INVALID_TYPE" in words:
        return LINK_TYPE_INVALID
    return LINK_REFUSED


def fold(payment: Payment, record: Outcome, links: Sequence[Outcome]) -> Outcome:
    """A written payment's outcome once its links are settled: created when every link is, retried
    for its links while any is pending, rejected when one can never be written. Retried or
    rejected, the record is written (``record_written``): the ledger records it."""
    pending = [o for o in links if o.state is State.RETRY]
    refused = [o for o in links if o.state is State.REJECTED]
    if not pending and not refused:
        return record
    written = dict(hubspot_id=record.hubspot_id, updated=record.updated, record_written=True)
    if pending:
        cause = pending[0].reason or Reason(LINKS_PENDING, "not written")
        text = f"record written (HubSpot id {record.hubspot_id}); {len(pending)} link(s) to write again: "
        reason = Reason(
            LINKS_PENDING,
            (text + cause.message)[:1000],
            cause.http_status,
            cause.code if cause.category == LINKS_PENDING else cause.category,
            cause.hubspot_correlation_id,
        )
        waiting = next((o for o in pending if o.wait is not None), None)  # what the links wait for
        wait, until_ms = (waiting.wait, waiting.until_ms) if waiting else (None, None)
        return Outcome(State.RETRY, reason, wait=wait, until_ms=until_ms, **written)
    reason = refused[0].reason or Reason(LINK_REJECTED, "HubSpot refused a link")
    text = f"record written (HubSpot id {record.hubspot_id}); a link can never be written: {reason.message}"
    return Outcome(State.REJECTED, replace(reason, message=text[:1000]), **written)


def unexpected_shape(answer: Answer) -> str | None:
    """What about a 2xx answer of the associations API differs from the documented shape, for the
    client's log line (as ``batching.unexpected_shape`` does for records)."""
    status = answer.status
    if (shape := results_shape(answer)) is not None or status is None or not 200 <= status < 300:
        return shape
    if status not in (200, 201, 207):
        return f"status {status}"
    return None
