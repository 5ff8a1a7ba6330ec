"""Values shared by the core and the adapters: a payment, a reason, and the four outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class State(str, Enum):
    """Every message leaves an invocation in exactly one of these (the invariant: docs/how-it-works.md)."""

    CREATED = "created"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a message was rejected or retried. Never holds a token or customer data beyond ids."""

    category: str
    message: str
    http_status: int | None = None
    code: str | None = None
    hubspot_correlation_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"category": self.category, "message": self.message}
        if self.http_status is not None:
            out["httpStatus"] = self.http_status
        if self.code is not None:
            out["code"] = self.code
        if self.hubspot_correlation_id is not None:
            out["hubspotCorrelationId"] = self.hubspot_correlation_id
        return out


# Message, Payment and Outcome are built once or twice per message, and a frozen dataclass's
# __init__ sets each field through object.__setattr__ (2.3 against 0.5 µs for seven fields in a
# micro-benchmark): ~2 µs per message of a batch of 10,000 (docs/performance.md, figure a). So they are
# plain slotted dataclasses; nothing changes one after it is built (``dataclasses.replace``
# makes a new one), and none is hashed.
@dataclass(slots=True)
class Message:
    """What the drain needs of one SQS record, whatever became of its body."""

    message_id: str
    body: str
    receive_count: int
    group_id: str | None = None
    receipt_handle: str | None = None
    sent_ms: int | None = None  # SentTimestamp: retention counts from it
    first_receive_ms: int | None = None  # ApproximateFirstReceiveTimestamp


@dataclass(slots=True)
class Payment:
    """A message whose body is a valid HubSpot create input."""

    message: Message
    payment_key: str
    properties: dict[str, str]
    associations: list[dict[str, Any]] = field(default_factory=list)
    version: int | None = None  # grows with each change of the payment (upsert mode orders by it)
    # Upsert mode: the HubSpot id of the record an earlier delivery of this version wrote, whose
    # links are still to be written (the ledger says so): only the links are sent.
    written_id: str | None = None

    @property
    def message_id(self) -> str:
        return self.message.message_id

    def hubspot_input(self) -> dict[str, Any]:
        """The batch/create input; the message id is its objectWriteTraceId (unique per batch)."""
        item: dict[str, Any] = {"properties": self.properties, "objectWriteTraceId": self.message_id}
        if self.associations:  # ``toObjectType`` is the drain's (links.target_type), not HubSpot's
            item["associations"] = [
                {k: v for k, v in a.items() if k != "toObjectType"} if "toObjectType" in a else a
                for a in self.associations
            ]
        return item

    def upsert_input(self, id_property: str) -> dict[str, Any]:
        """The batch/upsert input: the payment found (or created) by its key in ``id_property``.
        Upsert takes no associations: they are written after it, through the associations API
        (``links``)."""
        properties = {k: v for k, v in self.properties.items() if k != id_property}
        return {
            "id": self.payment_key,
            "idProperty": id_property,
            "properties": properties,
            "objectWriteTraceId": self.message_id,
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that can never succeed, with the body as parsed (or raw) for its report."""

    message: Message
    reason: Reason
    payment_key: str | None
    payment: Any


class Wait(str, Enum):
    """Why a retry must wait before HubSpot can take it: the message is then held on the queue
    (its visibility extended) instead of coming back every visibility timeout."""

    DAILY_LIMIT = "daily_limit"  # HubSpot's daily limit is spent: hours, not seconds
    HUBSPOT_UNAVAILABLE = "hubspot_unavailable"  # throttled, down or unreachable after retries
    LEDGER_UNAVAILABLE = "ledger_unavailable"  # the ledger table could not be read or written
    RATE_SLOTS_UNAVAILABLE = "rate_slots_unavailable"  # the rate slots table could not be used
    CLAIMED_ELSEWHERE = "claimed_elsewhere"  # another invocation holds the payment until ``until_ms``
    NO_SLOT_YET = "no_slot_yet"  # the rate limit's timeline has no slot for it before ``until_ms``
    CONFIGURATION = "configuration"  # HubSpot refuses what the deployment asks for: a person must fix it


@dataclass(slots=True)
class Outcome:
    state: State
    reason: Reason | None = None
    hubspot_id: str | None = None
    wait: Wait | None = None  # a retry that only waits for HubSpot (see Wait)
    updated: bool = False  # upsert mode: HubSpot had the payment and applied this message to it
    until_ms: int | None = None  # CLAIMED_ELSEWHERE, NO_SLOT_YET: when the wait ends
    # Upsert mode: HubSpot holds this message's record, although the outcome is a retry or a
    # rejection for its links (``links.fold``); the ledger records the record as written.
    record_written: bool = False
