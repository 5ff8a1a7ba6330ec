"""Adapter: the ledger table's DynamoDB requests, each within DynamoDB's limits per request.

``adapters.ledger`` says what the ledger's items mean; this module only moves them. Every batch
call is cut to DynamoDB's limit per request (``core.limits``: 25 statements per
BatchExecuteStatement, 25 puts per BatchWriteItem, 100 keys per BatchGetItem) and the requests go
out in parallel. What DynamoDB leaves undone in a request that succeeded (UnprocessedKeys,
UnprocessedItems, a statement failed transiently) is sent again after a backoff (``until_done``);
botocore's retries cover only a request that failed as a whole, hence this by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from payments_drain.adapters.aws_clients import client_config
from payments_drain.core import clock
from payments_drain.core.limits import (
    DDB_BATCH_GET_KEYS,
    DDB_BATCH_STATEMENTS,
    DDB_BATCH_WRITE_ITEMS,
    DDB_TABLE_NAME,
)

ATTEMPTS = 5
BACKOFF_S = 0.02  # doubled at each attempt
TABLE_NAME = re.compile(DDB_TABLE_NAME)
# INSERT of a key that exists; DELETE whose WHERE does not hold: that statement alone fails.
CONDITION_FAILED = frozenset({"DuplicateItem", "ConditionalCheckFailed"})
TRANSIENT = frozenset(
    {
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
        "InternalServerError",
        "TransactionConflict",
    }
)
# What an item is read with (the ledger's attributes; "status" is a reserved word).
PROJECTION = "paymentKey, #s, hubspotId, claimant, claimExpiresAt, version, applied, linksPending"

Pending = TypeVar("Pending")


class LedgerUnavailable(Exception):
    pass


def until_done(send: Callable[[Pending], Pending], pending: Pending, left: str) -> None:
    """``send(pending)`` returns what DynamoDB left undone; that is sent again after a backoff, at
    most ``ATTEMPTS`` times in all, then ``LedgerUnavailable(left)``."""
    for attempt in range(ATTEMPTS):
        pending = send(pending)
        if not pending:
            return
        clock.sleep(BACKOFF_S * 2**attempt)
    raise LedgerUnavailable(left)


def groups(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


class LedgerTable:
    """One table's batch requests, ``parallelism`` at a time."""

    def __init__(self, name: str, client=None, parallelism: int = 16, pool=None) -> None:
        if not TABLE_NAME.fullmatch(name):
            raise ValueError("the ledger table name may hold only letters, digits, '_', '-' and '.'")
        self.name = name
        # parameter_validation off: the request shapes are this module's own (and tested against
        # moto); botocore's client-side check of every attribute value is a quarter of the CPU
        # of a 25-statement request (measured against benchmarks.dynamo_stub). DynamoDB still
        # validates them.
        self.client = client or boto3.client(
            "dynamodb", config=client_config(max_pool_connections=parallelism + 4, parameter_validation=False)
        )
        self.pool = pool or ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="ledger")

    def execute(
        self, statement: str, parameters: Mapping[str, list], done: dict[str, bool] | None = None
    ) -> dict[str, bool]:
        """``statement`` once per key, 25 per BatchExecuteStatement, the requests in parallel.
        Whether each key's statement took effect (False: its condition did not hold), in ``done``
        as each statement answers: when one fails, what the others did is still there."""
        done = {} if done is None else done
        futures = [
            self.pool.submit(self._execute, statement, group, parameters, done)
            for group in groups(list(parameters), DDB_BATCH_STATEMENTS.value)
        ]
        failure: Exception | None = None
        for future in futures:
            try:
                future.result()
            except (BotoCoreError, ClientError, LedgerUnavailable) as error:
                failure = failure or error
        if failure is not None:
            raise failure
        return done

    def _execute(
        self, statement: str, keys: list[str], parameters: Mapping[str, list], done: dict[str, bool]
    ) -> None:
        """One BatchExecuteStatement; statements that failed transiently go again."""

        def send(keys: list[str]) -> list[str]:
            answer = self.client.batch_execute_statement(
                Statements=[{"Statement": statement, "Parameters": parameters[key]} for key in keys]
            )
            retry, failed = [], None
            for key, response in zip(keys, answer["Responses"]):  # in the order of the statements
                code = response.get("Error", {}).get("Code")
                if code in TRANSIENT:
                    retry.append(key)
                elif code is not None and code not in CONDITION_FAILED:
                    failed = failed or code
                else:
                    done[key] = code is None
            if failed:
                raise LedgerUnavailable(f"ledger statement failed ({failed})")
            return retry

        until_done(send, keys, "ledger statements kept failing transiently")

    def read(self, keys: list[str]) -> dict[str, dict]:
        """The items of ``keys`` (consistent reads), as plain values, 100 keys per BatchGetItem."""
        items: dict[str, dict] = {}
        for found in self.pool.map(self._read_group, groups(keys, DDB_BATCH_GET_KEYS.value)):
            items.update(found)
        return items

    def _read_group(self, keys: list[str]) -> dict[str, dict]:
        items: dict[str, dict] = {}

        def send(request: dict) -> dict:
            answer = self.client.batch_get_item(RequestItems=request)
            for raw in answer.get("Responses", {}).get(self.name, []):
                items[raw["paymentKey"]["S"]] = {k: next(iter(v.values())) for k, v in raw.items()}
            return answer.get("UnprocessedKeys") or {}

        request = {
            "Keys": [{"paymentKey": {"S": k}} for k in keys],
            "ConsistentRead": True,
            "ProjectionExpression": PROJECTION,
            "ExpressionAttributeNames": {"#s": "status"},
        }
        until_done(send, {self.name: request}, "ledger read left keys unprocessed")
        return items

    def write(self, requests: list[dict], what: str) -> None:
        """Every put request, 25 per BatchWriteItem, the requests in parallel."""
        try:
            list(self.pool.map(self._write_group, groups(requests, DDB_BATCH_WRITE_ITEMS.value)))
        except (BotoCoreError, ClientError) as error:
            raise LedgerUnavailable(f"{what} ({error_code(error)})") from None

    def _write_group(self, group: list[dict]) -> None:
        def send(group: list[dict]) -> list[dict]:
            answer = self.client.batch_write_item(RequestItems={self.name: group})
            return (answer.get("UnprocessedItems") or {}).get(self.name) or []

        until_done(send, group, "ledger write left items unprocessed")
