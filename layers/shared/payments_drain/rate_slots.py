"""HubSpot's rate limit as L slots in one DynamoDB item, shared by every container.

Each container sees in HubSpot's headers how much of the window is used, never who may still add
to it; pacing by the headers alone must keep room for the other containers' calls in flight, and
that room goes unused whenever the others are idle (docs/performance.md, figure c). This item
holds the limit's slots instead: attribute ``s<i>`` is the epoch millisecond from which slot i is
free (missing: free). A container claims free slots for one invocation with a conditional write
(two containers never hold one slot), held until its function's deadline plus a window, so a
killed container's slots come back by themselves; it sends at most one request per held slot in
any window, and at the end of the invocation gives each slot back from the moment its last
request leaves HubSpot's window. Nothing in boto3 or Powertools shares out a rate limit, hence
this adapter; ``pacing.SlotGate`` is its only user.
"""

from __future__ import annotations

import random

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from payments_drain.aws_clients import client_config
from payments_drain.observability import logger

KEY = {"name": {"S": "hubspot-rate-limit"}}
CLAIM_ATTEMPTS = 4  # a claim refused (a stale view, a slot lost to another container) tries again
# DynamoDB allows 4 KB and 300 operators per expression: a claim names each slot in a condition
# of 4 operators and about 45 characters, a release in one of 2 operators and about 20.
CLAIM_MAX = 25
RELEASE_MAX = 50


class RateSlotsUnavailable(Exception):
    """The slots table could not be read or written (the message names the error code only)."""


class DynamoRateSlots:
    def __init__(self, table_name: str, limit: int, client=None, rng: random.Random | None = None) -> None:
        self.table = table_name
        self.names = [f"s{i}" for i in range(limit)]
        self.wanted = set(self.names)
        self.view: dict[str, int] | None = None  # slot -> free from, as the last answer showed
        # parameter_validation off, as the ledger's: the request shapes are this module's own
        # (tested against DynamoDB Local); DynamoDB still validates them.
        self.client = client or boto3.client("dynamodb", config=client_config(parameter_validation=False))
        self.rng = rng or random.Random()

    def claim(self, want: int, hold_until_ms: int, now_ms: int) -> tuple[list[str], int]:
        """Up to ``want`` slots (at most CLAIM_MAX) free at ``now_ms``, held until ``hold_until_ms``;
        and the earliest epoch ms at which a slot not ours shows free (``now_ms`` when some were
        free but taken). The item as last seen (``view``, with our own changes since) saves a
        read: a claim that finds it stale is refused with the item as it stands and tries again
        with that; a view without a free slot is read again (others may have given some back)."""
        fresh = False
        for _ in range(CLAIM_ATTEMPTS):
            if self.view is None:
                self.view, fresh = self._read(), True
            free = [name for name in self.names if self.view.get(name, 0) <= now_ms]
            if not free:
                if fresh:
                    return [], min(self.view.get(name, 0) for name in self.names)
                self.view = None  # others may have given slots back since: read the item
                continue
            # At random among the free ones: containers claiming at once rarely want the same slot.
            chosen = self.rng.sample(free, min(max(1, want), len(free), CLAIM_MAX))
            refused = self._update(
                "SET " + ", ".join(f"#{name} = :hold" for name in chosen),
                " AND ".join(f"(attribute_not_exists(#{name}) OR #{name} <= :now)" for name in chosen),
                chosen,
                {":hold": {"N": str(hold_until_ms)}, ":now": {"N": str(now_ms)}},
            )
            if refused:  # the view is now the item as it stands: try again with it
                fresh = True
                continue
            self.view.update(dict.fromkeys(chosen, hold_until_ms))
            return chosen, now_ms
        return [], now_ms

    def release(self, free_at_ms: dict[str, int], held_until_ms: int) -> None:
        """Give slots back, each free from its time; only slots still held by us (as of
        ``held_until_ms``) change (the others come back at their hold's end anyway)."""
        pairs = list(free_at_ms.items())
        for start in range(0, len(pairs), RELEASE_MAX):
            group = pairs[start : start + RELEASE_MAX]
            refused = self._update(
                "SET " + ", ".join(f"#{name} = :f{i}" for i, (name, _) in enumerate(group)),
                " AND ".join(f"#{name} = :held" for name, _ in group),
                [name for name, _ in group],
                {
                    ":held": {"N": str(held_until_ms)},
                    **{f":f{i}": {"N": str(at)} for i, (_, at) in enumerate(group)},
                },
            )
            if not refused and self.view is not None:
                self.view.update(group)

    def _update(self, update: str, condition: str, names: list[str], values: dict) -> bool:
        """One conditional update; whether the condition failed, and then ``view`` becomes the
        item as it stands. (On success the caller knows what changed: no item is returned, as
        parsing the whole item costs the client more CPU than the request.)"""
        try:
            self._call(
                "update_item",
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={f"#{name}": name for name in names},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailed as failed:
            self.view = self._slots(failed.item)
            return True
        return False

    def _read(self) -> dict[str, int]:
        return self._slots(self._call("get_item", ConsistentRead=True).get("Item", {}))

    def _slots(self, item: dict) -> dict[str, int]:
        """The slots of an item as stored. A slot attribute that is not a number (written by
        hand, or by something else) would refuse every claim naming it: it is set free again,
        on the condition that it still holds the value read, and logged."""
        slots, damaged = {}, {}
        for name, value in item.items():
            if name not in self.wanted:
                continue
            number = _epoch_ms(value)
            if number is None:
                damaged[name] = value
            else:
                slots[name] = number
        for name, value in damaged.items():
            self._repair(name, value)
        return slots

    def _repair(self, name: str, value: object) -> None:
        logger.warning(
            "rate slots item repaired: a slot held a value that is not a number", extra={"slot": name}
        )
        try:
            self._call(
                "update_item",
                UpdateExpression="SET #s = :free",
                ConditionExpression="#s = :bad",
                ExpressionAttributeNames={"#s": name},
                ExpressionAttributeValues={":free": {"N": "0"}, ":bad": value},
            )
        except (_ConditionFailed, RateSlotsUnavailable):
            pass  # repaired by another container, or the next read tries again

    def _call(self, operation: str, **params):
        try:
            return getattr(self.client, operation)(TableName=self.table, Key=KEY, **params)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed(error.response.get("Item", {})) from None
            raise RateSlotsUnavailable(f"rate slots table: {operation} failed ({code})") from None
        except BotoCoreError as error:
            raise RateSlotsUnavailable(
                f"rate slots table: {operation} failed ({type(error).__name__})"
            ) from None


def _epoch_ms(value: object) -> int | None:
    try:
        return int(value["N"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None


class _ConditionFailed(Exception):
    def __init__(self, item: dict) -> None:
        super().__init__("condition failed")
        self.item = item  # the item as it stands (ReturnValuesOnConditionCheckFailure)
