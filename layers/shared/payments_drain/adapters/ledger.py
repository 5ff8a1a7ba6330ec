"""Adapter: the payment ledger in DynamoDB, keyed by ``paymentKey``.

Why not Powertools Idempotency: it guards one function call per key with one conditional write
to claim and one update to complete, each its own request, and botocore spends 2-3 ms of client
CPU per request: measured 3.4 ms per payment (``make bench ARGS=--proposals``), 340 ms per chunk
of 100 against a target of 50 ms. A batch needs the same guarantees for 100 keys at once. So,
per chunk of 100:

- every key is claimed with a PartiQL ``INSERT``, 25 per ``BatchExecuteStatement``, the four
  requests in parallel. DynamoDB refuses an INSERT of an existing key per statement
  (``DuplicateItem``), so two invocations racing for a key never both win, and the other
  statements of the request still succeed (1 write unit each; ``TransactWriteItems`` costs 2);
- only the refused keys are read (consistent ``BatchGetItem``): created ones settle as
  duplicates, claims held by a live invocation as busy, and an expired claim (its invocation
  died) is taken over with a conditional ``PutItem``;
- confirmations are ``BatchWriteItem`` puts, 25 per request in parallel (1 write unit each);
- claims on payments that surely were not stored are released with PartiQL ``DELETE``s, 25 per
  request, each conditional on the claim still being ours;
- claims on payments that HubSpot may have stored although no answer said so (a timeout, a 5xx,
  a reset) are marked ``ambiguous`` with ``BatchWriteItem`` puts: a finished invocation leaves no
  live claim, and the next delivery takes an ambiguous key over at once (and counts it).

Each chunk is recorded as soon as HubSpot's answer for it is settled (``drain``), so a container
killed at any instant leaves at most its in-flight chunks claimed. A claim request that fails
part-way releases the claims it did make before it raises.

Per new payment: 2 write units and no read, 8 requests per 100; a redelivered duplicate costs
1 write unit (the refused INSERT) and 1 read unit. The claim and expiry semantics are Powertools
Idempotency's: a claim is an "in progress" record that expires when the invocation that made it
must have ended.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from payments_drain.adapters.aws_clients import client_config
from payments_drain.core import clock
from payments_drain.core.observability import tracer

CLAIMED = "claimed"
CREATED = "created"
AMBIGUOUS = "ambiguous"  # its last invocation ended not knowing whether HubSpot stored it
BUSY = "busy"
STALE = "stale"  # upsert mode: a version at least as new as the message's is applied already
DAY_S = 86_400
STATEMENTS_PER_BATCH = 25  # BatchExecuteStatement's limit
TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,255}")
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


class LedgerUnavailable(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Entry:
    """CLAIMED (by us: send it), CREATED (a duplicate), BUSY (another invocation holds it) or, in
    upsert mode, STALE (a version at least as new is applied)."""

    state: str
    hubspot_id: str | None = None
    reclaimed: bool = (
        False  # the claim replaced an expired one: an invocation died holding it, maybe after sending
    )
    applied: bool = False  # upsert mode: the payment exists; its record is restored, not deleted, on release
    version: int | None = None  # upsert mode: the version last applied, kept across claims
    until_ms: int | None = None  # BUSY: when the other invocation's claim ends
    # Upsert mode: the applied version's record is written, its links are not all yet; a message
    # of that very version then writes only its links (``Payment.written_id``).
    links_pending: bool = False


def entry_or_claim(
    item: Mapping | None, claimant: str, now_ms: int, version: int | None = None, upsert: bool = False
) -> Entry:
    """What a ledger item means for a message (of ``version``, in upsert mode). An item written by
    something else (a value of the wrong type, a status we never write) is read for what can be
    read: a claim whose end cannot be read has ended; a version that cannot be read is unknown."""
    if item is None:
        return Entry(CLAIMED)
    status = item.get("status")
    hubspot_id = item.get("hubspotId") if isinstance(item.get("hubspotId"), str) else None
    if status == CREATED and not upsert:
        return Entry(CREATED, hubspot_id)
    expires = _number(item.get("claimExpiresAt"))
    if status == CLAIMED and item.get("claimant") != claimant and expires is not None and expires > now_ms:
        return Entry(BUSY, until_ms=expires)
    applied = _number(item.get("version"))
    pending = item.get("linksPending") is True
    if upsert and version is not None and applied is not None and version <= applied:
        if not (pending and version == applied):
            return Entry(STALE, hubspot_id, version=applied)
        return Entry(CLAIMED, hubspot_id, applied=True, version=applied, links_pending=True)
    reclaimed = status == AMBIGUOUS or (status == CLAIMED and item.get("claimant") != claimant)
    return Entry(
        CLAIMED,
        hubspot_id,
        reclaimed=reclaimed,
        applied=status == CREATED or bool(item.get("applied")),
        version=applied,
    )


def _number(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class DynamoLedger:
    def __init__(
        self, table_name: str, retention_days: int = 90, client=None, parallelism: int = 16, pool=None
    ) -> None:
        if not TABLE_NAME.fullmatch(table_name):
            raise ValueError("the ledger table name may hold only letters, digits, '_', '-' and '.'")
        self.table = table_name
        # The only text put into a statement is the table name, checked above against DynamoDB's
        # own character set (so it cannot leave its quotes); every value is a parameter.
        self.insert_claim = (
            f'INSERT INTO "{table_name}" VALUE '
            "{'paymentKey': ?, 'status': ?, 'claimant': ?, 'claimExpiresAt': ?, 'expiresAt': ?}"
        )
        self.delete_claim = (
            f'DELETE FROM "{table_name}" WHERE "paymentKey" = ? AND "status" = ? AND "claimant" = ?'  # nosec B608
        )
        self.retention_s = retention_days * DAY_S
        # parameter_validation off: the request shapes are this module's own (and tested against
        # moto); botocore's client-side check of every attribute value is a quarter of the CPU
        # of a 25-statement request (measured against benchmarks.dynamo_stub). DynamoDB still
        # validates them.
        self.client = client or boto3.client(
            "dynamodb", config=client_config(max_pool_connections=parallelism + 4, parameter_validation=False)
        )
        self.pool = pool or ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="ledger")

    @tracer.capture_method(capture_response=False)
    def claim(
        self,
        keys: Iterable[str],
        claimant: str,
        until_ms: int,
        versions: Mapping[str, int | None] | None = None,
    ) -> dict[str, Entry]:
        """Claim every key. ``versions`` (upsert mode: each key's message version, or None) makes
        a created key claimable again by a newer message, and a not newer one STALE."""
        keys = list(dict.fromkeys(keys))
        now = clock.wall_ms()
        upsert = versions is not None
        inserted: dict[str, bool] = {}  # filled as each request answers, also when another fails
        taken: dict[str, Entry] = {}  # the claims we took over, with what they held
        try:
            self._insert_claims(keys, claimant, until_ms, inserted)
            refused = [key for key in keys if not inserted[key]]
            items = self._read(refused)  # why: created, claimed by someone, or a claim that expired
            out = {
                key: Entry(CLAIMED)
                if inserted[key]
                else entry_or_claim(items.get(key), claimant, now, (versions or {}).get(key), upsert)
                for key in keys
            }
            held = [key for key in refused if out[key].state == CLAIMED]
            take = lambda key: self._take_over(key, claimant, now, until_ms, items.get(key), out[key])  # noqa: E731
            futures = {key: self.pool.submit(take, key) for key in held}
            failure: Exception | None = None
            for key, future in futures.items():  # every answer is looked at, also after a failure
                try:
                    ok = future.result()
                except (BotoCoreError, ClientError) as error:
                    failure = failure or error
                    continue
                if ok:
                    taken[key] = out[key]
                else:  # another invocation took it over (or it was released) since our read
                    out[key] = Entry(BUSY)
            if failure is not None:
                raise failure
        except (BotoCoreError, ClientError, LedgerUnavailable) as error:
            # Claims made before the failure would outlive this invocation and make the next
            # delivery look like one after a crash: undo them (best effort, they expire anyway).
            # A claim that took over an applied payment (upsert mode) goes back to what it was:
            # deleting it would forget its version and HubSpot id.
            applied = {key: entry for key, entry in taken.items() if entry.applied}
            ours = [key for key, ok in inserted.items() if ok] + [k for k in taken if k not in applied]
            for undo in (lambda: self.restore(applied), lambda: self.release(ours, claimant)):
                try:
                    undo()
                except LedgerUnavailable:
                    pass
            if isinstance(error, LedgerUnavailable):
                raise
            raise LedgerUnavailable(f"ledger claim failed ({_code(error)})") from None
        return out

    @tracer.capture_method(capture_response=False)
    def record_created(
        self,
        created: Mapping[str, str | None],
        versions: Mapping[str, int | None] | None = None,
        links_pending: Iterable[str] = (),
    ) -> None:
        """Created (or, in upsert mode, written at ``versions[key]``): its next message is a
        duplicate (or, in upsert mode, applied only if newer; of the same version, for the keys in
        ``links_pending``, sent for its links only)."""
        pending = set(links_pending)
        now = int(clock.wall())
        requests = []
        for key, hubspot_id in created.items():
            item = {
                "paymentKey": {"S": key},
                "status": {"S": CREATED},
                "createdAt": {"N": str(now)},
                "expiresAt": {"N": str(now + self.retention_s)},
            }
            if hubspot_id:
                item["hubspotId"] = {"S": hubspot_id}
            if (versions or {}).get(key) is not None:
                item["version"] = {"N": str(versions[key])}
            if key in pending:
                item["linksPending"] = {"BOOL": True}
            requests.append({"PutRequest": {"Item": item}})
        self._write(requests, "ledger write failed")

    def _write(self, requests: list[dict], what: str) -> None:
        groups = [requests[i : i + 25] for i in range(0, len(requests), 25)]
        try:
            list(self.pool.map(self._write_group, groups))
        except (BotoCoreError, ClientError) as error:
            raise LedgerUnavailable(f"{what} ({_code(error)})") from None

    @tracer.capture_method(capture_response=False)
    def mark_ambiguous(self, entries: Mapping[str, Entry]) -> None:
        """Our claims on payments HubSpot may have stored: no longer held by a live invocation, so
        their next delivery is handled at once (taken over, counted as ambiguous) instead of
        bouncing off a live claim until the claim expires. What the claim kept of an applied
        payment (upsert mode) is kept."""
        self._write(
            [{"PutRequest": {"Item": self._item(key, AMBIGUOUS, entry)}} for key, entry in entries.items()],
            "ledger write failed",
        )

    @tracer.capture_method(capture_response=False)
    def restore(self, entries: Mapping[str, Entry]) -> None:
        """Upsert mode: our claims on applied payments that surely were not written again go back
        to what they were (a release would forget the applied version)."""
        self._write(
            [{"PutRequest": {"Item": self._item(key, CREATED, entry)}} for key, entry in entries.items()],
            "ledger write failed",
        )

    def _item(self, key: str, status: str, entry: Entry, **extra: dict) -> dict:
        item = {
            "paymentKey": {"S": key},
            "status": {"S": status},
            "expiresAt": {"N": str(int(clock.wall()) + self.retention_s)},
            **extra,
        }
        if entry.hubspot_id:
            item["hubspotId"] = {"S": entry.hubspot_id}
        if entry.applied:
            item["applied"] = {"BOOL": True}
        if entry.version is not None:
            item["version"] = {"N": str(entry.version)}
        if entry.links_pending:
            item["linksPending"] = {"BOOL": True}
        return item

    @tracer.capture_method(capture_response=False)
    def release(self, keys: Iterable[str], claimant: str) -> None:
        """Drop our claims on payments that surely were not stored (retried or refused), so their
        next delivery is not mistaken for one after a crash. Best effort: claims expire anyway.
        PartiQL DELETEs, 25 per request: a DELETE whose WHERE does not hold (not our claim) fails
        alone with ConditionalCheckFailed; one on a missing key succeeds."""
        keys = list(dict.fromkeys(keys))
        try:
            self._batched(
                self.delete_claim, {key: [{"S": key}, {"S": CLAIMED}, {"S": claimant}] for key in keys}
            )
        except (BotoCoreError, ClientError) as error:
            raise LedgerUnavailable(f"ledger release failed ({_code(error)})") from None

    # -- what reconcile reads ---------------------------------------------------------------------
    def entries(self, keys: Iterable[str]) -> dict[str, dict]:
        """The items of ``keys`` as recorded (status, hubspotId, version...), consistently read."""
        try:
            return self._read(list(dict.fromkeys(keys)))
        except (BotoCoreError, ClientError) as error:
            raise LedgerUnavailable(f"ledger read failed ({_code(error)})") from None

    def created_between(self, since_s: int, until_s: int) -> list[str]:
        """The paymentKeys recorded as created (``createdAt``, epoch seconds: when the drain recorded
        HubSpot's answer) in ``[since_s, until_s)``: a Scan, for an operator's occasional look."""
        keys: list[str] = []
        try:
            for page in self.client.get_paginator("scan").paginate(
                TableName=self.table,
                FilterExpression="#s = :created AND createdAt BETWEEN :since AND :last",
                ProjectionExpression="paymentKey",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":created": {"S": CREATED},
                    ":since": {"N": str(since_s)},
                    ":last": {"N": str(until_s - 1)},
                },
            ):
                keys += [item["paymentKey"]["S"] for item in page.get("Items", [])]
        except (BotoCoreError, ClientError) as error:
            raise LedgerUnavailable(f"ledger scan failed ({_code(error)})") from None
        return sorted(key for key in keys if " " not in key)  # "report <messageId>": not a payment

    def _read(self, keys: list[str]) -> dict[str, dict]:
        items: dict[str, dict] = {}
        groups = [keys[i : i + 100] for i in range(0, len(keys), 100)]
        for found in self.pool.map(self._read_group, groups):
            items.update(found)
        return items

    def _read_group(self, keys: list[str]) -> dict[str, dict]:
        request = {
            self.table: {
                "Keys": [{"paymentKey": {"S": k}} for k in keys],
                "ConsistentRead": True,
                "ProjectionExpression": (
                    "paymentKey, #s, hubspotId, claimant, claimExpiresAt, version, applied, linksPending"
                ),
                "ExpressionAttributeNames": {"#s": "status"},
            }
        }
        items: dict[str, dict] = {}
        for attempt in range(5):
            answer = self.client.batch_get_item(RequestItems=request)
            for raw in answer.get("Responses", {}).get(self.table, []):
                items[raw["paymentKey"]["S"]] = {k: next(iter(v.values())) for k, v in raw.items()}
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return items
            clock.sleep(0.02 * 2**attempt)
        raise LedgerUnavailable("ledger read left keys unprocessed")

    def _insert_claims(self, keys: list[str], claimant: str, until_ms: int, done: dict[str, bool]) -> None:
        expires = {"N": str(until_ms // 1000 + DAY_S)}
        self._batched(
            self.insert_claim,
            {
                key: [{"S": key}, {"S": CLAIMED}, {"S": claimant}, {"N": str(until_ms)}, expires]
                for key in keys
            },
            done,
        )

    def _batched(
        self, statement: str, parameters: Mapping[str, list], done: dict[str, bool] | None = None
    ) -> dict[str, bool]:
        """``statement`` once per key, 25 per BatchExecuteStatement, the requests in parallel.
        Whether each key's statement took effect (False: its condition did not hold), in ``done``
        as each statement answers: when one fails, what the others did is still there."""
        keys = list(parameters)
        groups = [keys[i : i + STATEMENTS_PER_BATCH] for i in range(0, len(keys), STATEMENTS_PER_BATCH)]
        done = {} if done is None else done
        futures = [self.pool.submit(self._execute, statement, group, parameters, done) for group in groups]
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
        """One BatchExecuteStatement; statements that failed transiently go again (backoff)."""
        for attempt in range(5):
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
            if not retry:
                return
            keys = retry
            clock.sleep(0.02 * 2**attempt)
        raise LedgerUnavailable("ledger statements kept failing transiently")

    def _take_over(
        self, key: str, claimant: str, now_ms: int, until_ms: int, item: Mapping | None, entry: Entry
    ) -> bool:
        """Claim a key marked ambiguous, whose claim expired (or is already ours) or, in upsert
        mode, created at an older version, if it still is as read when we write."""
        names = {"#s": "status"}
        if item is not None and item.get("status") == CREATED:  # upsert mode: unchanged since our read
            condition = "#s = :created AND " + (
                "version = :v" if entry.version is not None else "attribute_not_exists(version)"
            )
            values = {
                ":created": {"S": CREATED},
                **({":v": {"N": str(entry.version)}} if entry.version is not None else {}),
            }
        else:
            condition = "#s = :ambiguous OR (#s = :claimed AND (claimExpiresAt < :now OR claimant = :me))"
            values = {
                ":claimed": {"S": CLAIMED},
                ":ambiguous": {"S": AMBIGUOUS},
                ":now": {"N": str(now_ms)},
                ":me": {"S": claimant},
            }
        claim = self._item(key, CLAIMED, entry, claimant={"S": claimant}, claimExpiresAt={"N": str(until_ms)})
        if not entry.applied:  # a claim alone is forgotten a day after it ends
            claim["expiresAt"] = {"N": str(until_ms // 1000 + DAY_S)}
        try:
            self.client.put_item(
                TableName=self.table,
                Item=claim,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
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
            clock.sleep(0.02 * 2**attempt)
        raise LedgerUnavailable("ledger write left items unprocessed")


def _code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__
