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

KEY = {"name": {"S": "hubspot-rate-limit"}}
CLAIM_ATTEMPTS = 3  # a claim that loses a slot to another container reads the item again
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
        # parameter_validation off, as the ledger's: the request shapes are this module's own
        # (tested against DynamoDB Local); DynamoDB still validates them.
        self.client = client or boto3.client("dynamodb", config=client_config(parameter_validation=False))
        self.rng = rng or random.Random()

    def claim(self, want: int, hold_until_ms: int, now_ms: int) -> tuple[list[str], int]:
        """Up to ``want`` slots (at most CLAIM_MAX) free at ``now_ms``, held until ``hold_until_ms``;
        and the earliest epoch ms at which a slot not ours shows free (``now_ms`` when some were
        free but taken)."""
        for _ in range(CLAIM_ATTEMPTS):
            free_at = self._read()
            free = [name for name in self.names if free_at.get(name, 0) <= now_ms]
            if not free:
                return [], min(free_at.get(name, 0) for name in self.names)
            # At random among the free ones: containers claiming at once rarely want the same slot.
            chosen = self.rng.sample(free, min(max(1, want), len(free), CLAIM_MAX))
            names = {f"#{name}": name for name in chosen}
            try:
                self._call(
                    "update_item",
                    UpdateExpression="SET " + ", ".join(f"#{name} = :hold" for name in chosen),
                    ConditionExpression=" AND ".join(
                        f"(attribute_not_exists(#{name}) OR #{name} <= :now)" for name in chosen
                    ),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={
                        ":hold": {"N": str(hold_until_ms)},
                        ":now": {"N": str(now_ms)},
                    },
                )
                return chosen, now_ms
            except _ConditionFailed:
                continue
        return [], now_ms

    def release(self, free_at_ms: dict[str, int], held_until_ms: int) -> None:
        """Give slots back, each free from its time; only slots still held by us (as of
        ``held_until_ms``) change."""
        items = list(free_at_ms.items())
        for start in range(0, len(items), RELEASE_MAX):
            self._release(items[start : start + RELEASE_MAX], held_until_ms)

    def _release(self, pairs: list[tuple[str, int]], held_until_ms: int) -> None:
        try:
            self._call(
                "update_item",
                UpdateExpression="SET " + ", ".join(f"#{name} = :f{i}" for i, (name, _) in enumerate(pairs)),
                ConditionExpression=" AND ".join(f"#{name} = :held" for name, _ in pairs),
                ExpressionAttributeNames={f"#{name}": name for name, _ in pairs},
                ExpressionAttributeValues={
                    ":held": {"N": str(held_until_ms)},
                    **{f":f{i}": {"N": str(at)} for i, (_, at) in enumerate(pairs)},
                },
            )
        except _ConditionFailed:  # not ours any more: they come back at their hold's end anyway
            pass

    def _read(self) -> dict[str, int]:
        item = self._call("get_item", ConsistentRead=True).get("Item", {})
        return {name: int(value["N"]) for name, value in item.items() if name in self.names}

    def _call(self, operation: str, **params):
        try:
            return getattr(self.client, operation)(TableName=self.table, Key=KEY, **params)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed from None
            raise RateSlotsUnavailable(f"rate slots table: {operation} failed ({code})") from None
        except BotoCoreError as error:
            raise RateSlotsUnavailable(
                f"rate slots table: {operation} failed ({type(error).__name__})"
            ) from None


class _ConditionFailed(Exception):
    pass
