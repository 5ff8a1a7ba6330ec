"""HubSpot's rate limit as one sliding log in one DynamoDB item, shared by every container.

Each container sees in HubSpot's headers how much of the window is used, never who may still add
to it; pacing by the headers alone must keep room for the other containers' calls in flight, and
that room goes unused whenever the others are idle (docs/performance.md, figure c). This item
holds the limit as a log of *slots* instead (``core.slot_log``: where a slot may go, and the
log's text). Two attributes, each changed by a conditional write on the value read (two containers never take
the same slot):

- ``log``: the last ``limit`` slots (``slot_log.encode``). A claim appends the slots it takes
  that start before the claimant's last useful moment (its ``reach``). A slot not used in time passes:
  nothing is ever given back, so a container killed, paused by a 429 or finished early holds
  nothing once its slots have passed. A claim also writes down what its container learnt of its
  own earlier slots (``done``): a slot whose call was answered at ``t`` moves to ``t + CLOCK_MS -
  MARGIN_MS`` (its request was counted before ``t``, so it leaves HubSpot's window by ``t +
  window``: the moved slot binds exactly that long, usually less than the slot itself would have),
  and a slot no call used is taken out. Only the claimant knows these, and the log is rewritten
  anyway; a write whose outcome is unknown drops them (the slot then binds its full time);
- ``limit``: the rate limit its last writer planned with. Stacks sharing the table (one HubSpot
  app) must plan by the same; a container that reads another keeps to the smaller from then on
  and logs a warning (docs/deploy.md);
- ``queue``: the end of the waiting line. A container whose claim cannot fit before its reach
  takes a *ticket* instead: the slots it wants, after everyone already waiting, at the limit's
  sustained rate; its messages are held on the queue until the ticket comes up (``retry_at_ms``),
  so that N containers contending come back one after the other instead of all at the next slot.

The item stays under 1 KB for claims of a few slots each: a write costs one write unit, refused
or not. A container keeps the values it last saw, so a claim is one write when nothing raced
it. A throttled request is "no slot yet" (``Claim.busy``), never an outage. Nothing in boto3 or
Powertools shares out a rate limit, hence this adapter; ``pacing.SlotGate`` is its only user.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from payments_drain.adapters.aws_clients import client_config
from payments_drain.core.limits import HUBSPOT_WINDOW_MS
from payments_drain.core.observability import logger
from payments_drain.core.slot_log import MARGIN_MS, ROUND_MS, SlotRule, decode, encode, settle

KEY = {"name": {"S": "hubspot-rate-timeline"}}
ATTEMPTS = 3  # a claim refused because another container moved the value first
# A ticket raced twice: the line is busy; a jittered wait spreads the writes better than a third.
TICKET_ATTEMPTS = 2
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
    settled: bool = False  # the claim's ``done`` is in the log: not to be sent again
    retry_at_ms: int | None = None  # none taken: no claim can succeed before this (a ticket)
    busy: bool = False  # none taken: DynamoDB throttled the item, or other claims won every race


class DynamoRateSlots:
    def __init__(
        self,
        table_name: str,
        limit: int,
        client=None,
        window_ms: int = HUBSPOT_WINDOW_MS.value,
        *,
        parallel: int = 1,
        round_ms: int = ROUND_MS,
    ) -> None:
        self.item = SlotsItem(table_name, limit, client)
        self.gap_ms = window_ms + MARGIN_MS  # between a slot and the one ``limit`` places after it
        self.parallel, self.round_ms = max(1, parallel), round_ms

    @property
    def spacing_ms(self) -> int:
        """The sustained rate: one slot per this many ms (``limit`` per ``window + MARGIN_MS``)."""
        return math.ceil(self.gap_ms / self.item.limit)

    def claim(
        self,
        want: int,
        now_ms: int,
        reach_ms: int,
        done: Sequence[tuple[int, int | None]] = (),
        clock: Callable[[], int] | None = None,
        round_ms: int | None = None,
    ) -> Claim:
        """Up to ``want`` slots (at most CLAIM_MAX) from ``now_ms`` that start by ``reach_ms``;
        when none fits, a ticket for ``want`` slots at the end of the waiting line. ``done``: this
        container's slots whose calls are over, each with the time its answer came (None: no call
        used it), written with the claim (``Claim.settled``). ``clock`` (epoch ms), when given, is
        read again after each round trip (the first read, a refused write): the slots are planned
        from when they are written, not from before a read that may outlast ``SLACK_MS`` (a
        container's first claim took 100-190 ms in figure c, and its first round of slots passed).
        ``round_ms``: how far apart the claimant's own rounds go (default: the one it was made with)."""
        want = max(1, min(want, CLAIM_MAX))
        try:
            item = self.item
            if item.seen is None:
                item.read()
            for _ in range(ATTEMPTS):
                now_ms = max(now_ms, clock()) if clock else now_ms
                log = settle(_decode(item.seen.get("log")) or [], done)
                rule = SlotRule(item.limit, self.gap_ms, self.parallel, round_ms or self.round_ms)
                starts = rule.plan(log, want, now_ms)
                if item.ms("queue") > max(starts[0], now_ms):
                    # A line is waiting: no slot further ahead than a ticket's lead is claimed, so
                    # that the slots the line was promised are there when its tickets come up.
                    reach_ms = min(reach_ms, now_ms + TICKET_LEAD_MS)
                fit = [start for start in starts if start <= reach_ms]
                if not fit:
                    return self._ticket(want, now_ms, starts[0])
                kept = [start for start in log if start > now_ms - self.gap_ms]  # older ones bind no slot
                if item.move("log", {"S": encode(sorted(kept + fit))}):
                    return Claim(fit, settled=True)
            return Claim(busy=True)  # other claims won every race: try again in a moment
        except _Throttled:
            return Claim(busy=True)

    def _ticket(self, want: int, now_ms: int, first_ms: int) -> Claim:
        for _ in range(TICKET_ATTEMPTS):
            start = max(self.item.ms("queue"), first_ms, now_ms)
            end = start + want * self.spacing_ms  # at the sustained rate
            if self.item.move("queue", {"N": str(end)}):
                return Claim(retry_at_ms=max(now_ms, start - TICKET_LEAD_MS))
        return Claim(busy=True)  # other tickets won every race: try again in a moment


class SlotsItem:
    """The one item in the slots table: its attributes as last seen, changed only by a conditional
    write on that view (``move``), and the rate limit the claims plan by (``limit``: ours, or the
    smaller one another stack wrote)."""

    def __init__(self, table_name: str, limit: int, client=None) -> None:
        self.table = table_name
        self.configured = self.limit = max(1, limit)
        self.others: set[int] = set()  # other limits met on the item (each warned of once)
        self.seen: dict[str, dict] | None = None  # the attributes as last seen
        # parameter_validation off, as the ledger's: the request shapes are this module's own
        # (tested against DynamoDB Local); DynamoDB still validates them.
        self.client = client or boto3.client("dynamodb", config=client_config(parameter_validation=False))

    def read(self) -> None:
        """A container's first look (later ones come with a refused write)."""
        self.learn(self.call("get_item", ConsistentRead=True).get("Item", {}))

    def move(self, name: str, to: dict) -> bool:
        """Set ``name`` to ``to`` if it still holds the value last seen; else learn the item as it
        stands and say so. A value that is not a number (written by hand, or by something else)
        reads as 0 and is replaced the same way, on the condition that it is still what was read
        (``repaired``, logged)."""
        seen = self.seen.get(name)
        values = {":to": to, ":limit": {"N": str(self.configured)}}
        if seen is None:
            condition = "attribute_not_exists(#v)"
        else:
            condition, values[":seen"] = "#v = :seen", seen
        try:
            self.call(
                "update_item",
                UpdateExpression="SET #v = :to, #limit = :limit",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#v": name, "#limit": "limit"},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailed as failed:
            self.learn(failed.item)
            return False
        self.seen[name] = values[":to"]
        return True

    def learn(self, item: dict) -> None:
        self.seen = {name: item[name] for name in ("log", "queue") if name in item}
        other = _epoch_ms(item.get("limit"))  # the limit the item's last writer planned with
        if other and other != self.configured and other not in self.others:
            # Stacks sharing one table share one app's limit and must be deployed with the same
            # HubSpotRateLimitPer10s; until they are, every container keeps to the smaller.
            self.others.add(other)
            logger.warning(
                "rate slots shared with a stack planning by another limit: keeping to the smaller",
                extra={"configured": self.configured, "other": other},
            )
        if other:
            self.limit = min(self.limit, other)
        damaged = [
            name
            for name, value in self.seen.items()
            if (name == "queue" and not _epoch_ms(value)) or (name == "log" and _decode(value) is None)
        ]
        for name in damaged:
            logger.warning("rate slots item repaired: a value cannot be read", extra={"attribute": name})

    def ms(self, name: str) -> int:
        return _epoch_ms(self.seen.get(name))

    def call(self, operation: str, **params):
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


def _decode(value: object) -> list[int] | None:
    """The log in a DynamoDB attribute (``{"S": ...}``); [] for none, None for one that is not a log."""
    if value is None:
        return []
    text = value.get("S") if isinstance(value, dict) else None
    return decode(text) if isinstance(text, str) else None
