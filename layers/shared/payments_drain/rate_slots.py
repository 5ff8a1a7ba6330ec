"""HubSpot's rate limit as one timeline in one DynamoDB item, shared by every container.

Each container sees in HubSpot's headers how much of the window is used, never who may still add
to it; pacing by the headers alone must keep room for the other containers' calls in flight, and
that room goes unused whenever the others are idle (docs/performance.md, figure c). This item
holds the limit as a timeline instead: a request may start only at a *slot*, a moment on the
timeline, and consecutive slots are ``spacing_ms`` apart, ``(window + MARGIN_MS) / limit``: a
request counted in HubSpot's rolling window (the last ``window`` ms) was counted less than
``MARGIN_MS`` after its slot (``SLACK_MS`` to start, the rest to reach HubSpot's counter), so its
slot lies in a half-open span of ``window + MARGIN_MS``, which holds at most ``limit`` slots. Two attributes, each changed by a conditional write on the value read (two
containers never take the same slot):

- ``next``: the epoch ms of the first slot nobody holds. A claim takes the ``k`` slots from
  ``max(next, now)`` that start before the claimant's last useful moment (its ``reach``) and moves
  ``next`` past them. A slot not used in time passes: nothing is ever given back, so a container
  killed, paused by a 429 or finished early holds nothing once its slots have passed;
- ``queue``: the end of the waiting line. A container whose claim cannot fit before its reach
  takes a *ticket* instead: the slots it wants, after everyone already waiting; its messages are
  held on the queue until the ticket comes up (``retry_at_ms``), so that N containers contending
  come back one after the other instead of all at the next free slot.

The item is a few dozen bytes: every write costs one write unit, refused or not. A container
keeps the values it last saw (they only grow), so a claim is one write when nothing raced it.
A throttled request is "no slot yet" (``Claim.busy``), never an outage. Nothing in boto3 or
Powertools shares out a rate limit, hence this adapter; ``pacing.SlotGate`` is its only user.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from payments_drain.aws_clients import client_config
from payments_drain.limits import HUBSPOT_WINDOW_MS
from payments_drain.observability import logger

KEY = {"name": {"S": "hubspot-rate-timeline"}}
ATTEMPTS = 3  # a claim refused because another container moved the value first
# A ticket raced twice: the line is busy; a jittered wait spreads the writes better than a third.
TICKET_ATTEMPTS = 2
MARGIN_MS = 500  # SLACK_MS to start the request, and its trip to HubSpot's counter
SLACK_MS = 250  # a slot not started this long after its moment has passed
CLAIM_MAX = 100  # slots per claim: one invocation's chunks at BatchSize 10,000
TICKET_LEAD_MS = 5_000  # a held message comes back this long before its ticket's first slot
# DynamoDB's answers that mean "too many requests on this item or table": wait, not an outage.
THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)


class RateSlotsUnavailable(Exception):
    """The slots table could not be read or written (the message names the error code only)."""


@dataclass(frozen=True, slots=True)
class Claim:
    starts_ms: list[int] = field(default_factory=list)  # the slots taken, in order
    retry_at_ms: int | None = None  # none taken: no claim can succeed before this (a ticket)
    busy: bool = False  # none taken: DynamoDB throttled the item, or other claims won every race


class DynamoRateSlots:
    def __init__(
        self, table_name: str, limit: int, client=None, window_ms: int = HUBSPOT_WINDOW_MS.value
    ) -> None:
        self.table = table_name
        self.spacing_ms = math.ceil((window_ms + MARGIN_MS) / max(1, limit))
        self.seen: dict[str, dict] | None = None  # the attributes as last seen (they only grow)
        # parameter_validation off, as the ledger's: the request shapes are this module's own
        # (tested against DynamoDB Local); DynamoDB still validates them.
        self.client = client or boto3.client("dynamodb", config=client_config(parameter_validation=False))

    def claim(self, want: int, now_ms: int, reach_ms: int) -> Claim:
        """Up to ``want`` slots (at most CLAIM_MAX) from ``now_ms`` that start by ``reach_ms``;
        when none fits, a ticket for ``want`` slots at the end of the waiting line."""
        want = max(1, min(want, CLAIM_MAX))
        try:
            if self.seen is None:
                self._learn(self._call("get_item", ConsistentRead=True).get("Item", {}))
            for _ in range(ATTEMPTS):
                if self._ms("queue") > max(self._ms("next"), now_ms):
                    # A line is waiting: no slot further ahead than a ticket's lead is claimed, so
                    # that the slots the line was promised are there when its tickets come up.
                    reach_ms = min(reach_ms, now_ms + TICKET_LEAD_MS)
                start = max(self._ms("next"), now_ms)
                fits = (reach_ms - start) // self.spacing_ms + 1 if reach_ms >= start else 0
                if fits <= 0:
                    return self._ticket(want, now_ms)
                count = min(want, fits)
                end = start + count * self.spacing_ms
                if self._move("next", end):
                    return Claim([start + i * self.spacing_ms for i in range(count)])
            return Claim(busy=True)  # other claims won every race: try again in a moment
        except _Throttled:
            return Claim(busy=True)

    def _ticket(self, want: int, now_ms: int) -> Claim:
        for _ in range(TICKET_ATTEMPTS):
            start = max(self._ms("queue"), self._ms("next"), now_ms)
            end = start + want * self.spacing_ms
            if self._move("queue", end):
                return Claim(retry_at_ms=max(now_ms, start - TICKET_LEAD_MS))
        return Claim(busy=True)  # other tickets won every race: try again in a moment

    def _move(self, name: str, to: int) -> bool:
        """Set ``name`` to ``to`` if it still holds the value last seen; else learn the item as it
        stands and say so. A value that is not a number (written by hand, or by something else)
        reads as 0 and is replaced the same way, on the condition that it is still what was read
        (``repaired``, logged)."""
        seen = self.seen.get(name)
        values = {":to": {"N": str(to)}}
        if seen is None:
            condition = "attribute_not_exists(#v)"
        else:
            condition, values[":seen"] = "#v = :seen", seen
        try:
            self._call(
                "update_item",
                UpdateExpression="SET #v = :to",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#v": name},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailed as failed:
            self._learn(failed.item)
            return False
        self.seen[name] = values[":to"]
        return True

    def _learn(self, item: dict) -> None:
        self.seen = {name: item[name] for name in ("next", "queue") if name in item}
        for name, value in self.seen.items():
            if not _epoch_ms(value):
                logger.warning("rate slots item repaired: a value is not a number", extra={"attribute": name})

    def _ms(self, name: str) -> int:
        return _epoch_ms(self.seen.get(name))

    def _call(self, operation: str, **params):
        try:
            return getattr(self.client, operation)(TableName=self.table, Key=KEY, **params)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed(error.response.get("Item", {})) from None
            if code in THROTTLED:
                raise _Throttled from None
            raise RateSlotsUnavailable(f"rate slots table: {operation} failed ({code})") from None
        except BotoCoreError as error:
            raise RateSlotsUnavailable(
                f"rate slots table: {operation} failed ({type(error).__name__})"
            ) from None


def _epoch_ms(value: object) -> int:
    try:
        return int(value["N"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return 0


class _ConditionFailed(Exception):
    def __init__(self, item: dict) -> None:
        super().__init__("condition failed")
        self.item = item  # the item as it stands (ReturnValuesOnConditionCheckFailure)


class _Throttled(Exception):
    pass
