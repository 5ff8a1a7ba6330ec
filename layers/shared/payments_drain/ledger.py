"""Adapter: the payment ledger in DynamoDB, keyed by ``paymentKey``.

Why not Powertools Idempotency: it guards one function call per key with one conditional write
each, then a second write for the result, and reads nothing in bulk. A batch of 100 payments
needs the same guarantees for 100 keys at once: a bulk consistent read (BatchGetItem) settles
the already-created ones as duplicates for 1 read unit each, claims go out in parallel as
conditional puts (1 write unit each, no transaction: TransactWriteItems costs 2 units per item),
and confirmations are bulk writes (BatchWriteItem, 1 unit each). Per payment on the happy path:
1 read unit and 2 write units. The claim/expiry semantics are Powertools Idempotency's: a claim
is an "in progress" record that expires when the invocation that made it must have ended.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from payments_drain.observability import tracer
CLAIMED = "claimed"
CREATED = "created"
BUSY = "busy"
DAY_S = 86_400


class LedgerUnavailable(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Entry:
    state: str  # CLAIMED (by us, send it), CREATED (a duplicate) or BUSY (another invocation holds it)
    hubspot_id: str | None = None
    reclaimed: bool = False  # the claim replaced an expired one: an invocation died holding it, maybe after sending


def entry_or_claim(item: Mapping | None, claimant: str, now_ms: int) -> Entry:
    if item is None:
        return Entry(CLAIMED)
    if item.get("status") == CREATED:
        return Entry(CREATED, item.get("hubspotId"))
    if item.get("claimant") == claimant:
        return Entry(CLAIMED)
    if int(item.get("claimExpiresAt", 0)) > now_ms:
        return Entry(BUSY)
    return Entry(CLAIMED, reclaimed=True)


class DynamoLedger:
    def __init__(self, table_name: str, retention_days: int = 90, client=None, parallelism: int = 16) -> None:
        self.table = table_name
        self.retention_s = retention_days * DAY_S
        self.client = client or boto3.client(
            "dynamodb", config=Config(max_pool_connections=parallelism + 4, retries={"mode": "standard"})
        )
        self.pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="ledger")

    @tracer.capture_method(capture_response=False)
    def claim(self, keys: Iterable[str], claimant: str, until_ms: int) -> dict[str, Entry]:
        keys = list(dict.fromkeys(keys))
        now = int(time.time() * 1000)
        try:
            items = self._read(keys)
            out = {key: entry_or_claim(items.get(key), claimant, now) for key in keys}
            to_claim = [key for key, entry in out.items() if entry.state == CLAIMED]
            won = self.pool.map(lambda key: self._claim_one(key, claimant, now, until_ms), to_claim)
            for key, ok in zip(to_claim, list(won)):
                if not ok:  # another invocation claimed or created it between our read and write
                    out[key] = Entry(BUSY)
        except (BotoCoreError, ClientError) as error:
            raise LedgerUnavailable(f"ledger claim failed ({_code(error)})") from None
        return out

    @tracer.capture_method(capture_response=False)
    def record_created(self, created: Mapping[str, str | None]) -> None:
        now = int(time.time())
        requests = []
        for key, hubspot_id in created.items():
            item = {"paymentKey": {"S": key}, "status": {"S": CREATED}, "createdAt": {"N": str(now)},
                    "expiresAt": {"N": str(now + self.retention_s)}}
            if hubspot_id:
                item["hubspotId"] = {"S": hubspot_id}
            requests.append({"PutRequest": {"Item": item}})
        groups = [requests[i : i + 25] for i in range(0, len(requests), 25)]
        try:
            list(self.pool.map(self._write_group, groups))
        except (BotoCoreError, ClientError) as error:
            raise LedgerUnavailable(f"ledger write failed ({_code(error)})") from None

    @tracer.capture_method(capture_response=False)
    def release(self, keys: Iterable[str], claimant: str) -> None:
        """Drop our claims on payments that surely were not stored (retried or refused), so their
        next delivery is not mistaken for one after a crash. Best effort: claims expire anyway."""
        try:
            list(self.pool.map(lambda key: self._release_one(key, claimant), list(keys)))
        except (BotoCoreError, ClientError) as error:
            raise LedgerUnavailable(f"ledger release failed ({_code(error)})") from None

    def _release_one(self, key: str, claimant: str) -> None:
        try:
            self.client.delete_item(
                TableName=self.table, Key={"paymentKey": {"S": key}},
                ConditionExpression="#s = :claimed AND claimant = :me",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":claimed": {"S": CLAIMED}, ":me": {"S": claimant}},
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise

    def _read(self, keys: list[str]) -> dict[str, dict]:
        items: dict[str, dict] = {}
        groups = [keys[i : i + 100] for i in range(0, len(keys), 100)]
        for found in self.pool.map(self._read_group, groups):
            items.update(found)
        return items

    def _read_group(self, keys: list[str]) -> dict[str, dict]:
        request = {self.table: {"Keys": [{"paymentKey": {"S": k}} for k in keys], "ConsistentRead": True,
                                "ProjectionExpression": "paymentKey, #s, hubspotId, claimant, claimExpiresAt",
                                "ExpressionAttributeNames": {"#s": "status"}}}
        items: dict[str, dict] = {}
        for attempt in range(5):
            answer = self.client.batch_get_item(RequestItems=request)
            for raw in answer.get("Responses", {}).get(self.table, []):
                items[raw["paymentKey"]["S"]] = {k: next(iter(v.values())) for k, v in raw.items()}
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return items
            time.sleep(0.02 * 2**attempt)
        raise LedgerUnavailable("ledger read left keys unprocessed")

    def _claim_one(self, key: str, claimant: str, now_ms: int, until_ms: int) -> bool:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={"paymentKey": {"S": key}, "status": {"S": CLAIMED}, "claimant": {"S": claimant},
                      "claimExpiresAt": {"N": str(until_ms)}, "expiresAt": {"N": str(until_ms // 1000 + DAY_S)}},
                ConditionExpression="attribute_not_exists(paymentKey) OR (#s = :claimed AND claimExpiresAt < :now)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":claimed": {"S": CLAIMED}, ":now": {"N": str(now_ms)}},
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _write_group(self, group: list[dict]) -> None:
        for attempt in range(5):
            answer = self.client.batch_write_item(RequestItems={self.table: group})
            group = (answer.get("UnprocessedItems") or {}).get(self.table) or []
            if not group:
                return
            time.sleep(0.02 * 2**attempt)
        raise LedgerUnavailable("ledger write left items unprocessed")


def _code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__
