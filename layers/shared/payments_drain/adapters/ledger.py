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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from payments_drain.adapters.ledger_table import LedgerTable, LedgerUnavailable, error_code
from payments_drain.core import clock
from payments_drain.core.observability import traced

CLAIMED = "claimed"
CREATED = "created"
AMBIGUOUS = "ambiguous"  # its last invocation ended not knowing whether HubSpot stored it
BUSY = "busy"
STALE = "stale"  # upsert mode: a version at least as new as the message's is applied already
DAY_S = 86_400


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


def item_of(key: str, status: str, entry: Entry, expires_s: int, **extra: dict) -> dict:
    """The ledger item of ``key`` in ``status``, keeping what ``entry`` knows of the payment."""
    item = {"paymentKey": {"S": key}, "status": {"S": status}, "expiresAt": {"N": str(expires_s)}, **extra}
    if entry.hubspot_id:
        item["hubspotId"] = {"S": entry.hubspot_id}
    if entry.applied:
        item["applied"] = {"BOOL": True}
    if entry.version is not None:
        item["version"] = {"N": str(entry.version)}
    if entry.links_pending:
        item["linksPending"] = {"BOOL": True}
    return item


def take_over_condition(item: Mapping | None, entry: Entry, claimant: str, now_ms: int) -> tuple[str, dict]:
    """The condition (and its values) under which a claim may replace ``item`` as it was read: an
    item marked ambiguous, a claim that expired (or is already ours) or, in upsert mode, a
    payment created at an older version, unchanged since."""
    if item is not None and item.get("status") == CREATED:  # upsert mode: unchanged since our read
        if entry.version is None:
            return "#s = :created AND attribute_not_exists(version)", {":created": {"S": CREATED}}
        return "#s = :created AND version = :v", {":created": {"S": CREATED}, ":v": {"N": str(entry.version)}}
    return "#s = :ambiguous OR (#s = :claimed AND (claimExpiresAt < :now OR claimant = :me))", {
        ":claimed": {"S": CLAIMED},
        ":ambiguous": {"S": AMBIGUOUS},
        ":now": {"N": str(now_ms)},
        ":me": {"S": claimant},
    }


class DynamoLedger:
    """Claims on payments and what became of them (the module's docstring); the requests
    themselves are ``LedgerTable``'s."""

    def __init__(
        self, table_name: str, retention_days: int = 90, client=None, parallelism: int = 16, pool=None
    ) -> None:
        self.requests = LedgerTable(table_name, client, parallelism, pool)
        self.table, self.client = table_name, self.requests.client
        self.retention_s = retention_days * DAY_S
        self.claims = LedgerClaims(self.requests, self.retention_s, undo=self)
        self.claim = self.claims.claim  # taking claims is LedgerClaims' job
        # The table name is safe in a statement (LedgerClaims.insert_claim says why).
        self.delete_claim = (
            f'DELETE FROM "{table_name}" WHERE "paymentKey" = ? AND "status" = ? AND "claimant" = ?'  # nosec B608
        )

    @traced(capture_response=False)
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
        entries = {
            key: Entry(CREATED, hubspot_id, version=(versions or {}).get(key), links_pending=key in pending)
            for key, hubspot_id in created.items()
        }
        self._put(entries, CREATED, now, createdAt={"N": str(now)})

    @traced(capture_response=False)
    def mark_ambiguous(self, entries: Mapping[str, Entry]) -> None:
        """Our claims on payments HubSpot may have stored: no longer held by a live invocation, so
        their next delivery is handled at once (taken over, counted as ambiguous) instead of
        bouncing off a live claim until the claim expires. What the claim kept of an applied
        payment (upsert mode) is kept."""
        self._put(entries, AMBIGUOUS)

    @traced(capture_response=False)
    def restore(self, entries: Mapping[str, Entry]) -> None:
        """Upsert mode: our claims on applied payments that surely were not written again go back
        to what they were (a release would forget the applied version)."""
        self._put(entries, CREATED)

    def _put(
        self, entries: Mapping[str, Entry], status: str, now_s: int | None = None, **extra: dict
    ) -> None:
        now_s = int(clock.wall()) if now_s is None else now_s
        self.requests.write(
            [
                {"PutRequest": {"Item": item_of(key, status, entry, now_s + self.retention_s, **extra)}}
                for key, entry in entries.items()
            ],
            "ledger write failed",
        )

    @traced(capture_response=False)
    def release(self, keys: Iterable[str], claimant: str) -> None:
        """Drop our claims on payments that surely were not stored (retried or refused), so their
        next delivery is not mistaken for one after a crash. Best effort: claims expire anyway.
        PartiQL DELETEs, 25 per request: a DELETE whose WHERE does not hold (not our claim) fails
        alone with ConditionalCheckFailed; one on a missing key succeeds."""
        keys = list(dict.fromkeys(keys))
        try:
            self.requests.execute(
                self.delete_claim, {key: [{"S": key}, {"S": CLAIMED}, {"S": claimant}] for key in keys}
            )
        except (BotoCoreError, ClientError) as error:
            raise LedgerUnavailable(f"ledger release failed ({error_code(error)})") from None

    # -- what reconcile reads ---------------------------------------------------------------------
    def entries(self, keys: Iterable[str]) -> dict[str, dict]:
        """The items of ``keys`` as recorded (status, hubspotId, version...), consistently read."""
        try:
            return self.requests.read(list(dict.fromkeys(keys)))
        except (BotoCoreError, ClientError) as error:
            raise LedgerUnavailable(f"ledger read failed ({error_code(error)})") from None

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
            raise LedgerUnavailable(f"ledger scan failed ({error_code(error)})") from None
        return sorted(key for key in keys if " " not in key)  # "report <messageId>": not a payment


class LedgerClaims:
    """Taking claims: a PartiQL INSERT per key, a read of the refused ones, a conditional take-over
    of those that may be taken; on a failure, what was taken is given back (``undo``: the
    ledger's ``restore`` and ``release``)."""

    def __init__(self, requests: LedgerTable, retention_s: int, undo: DynamoLedger) -> None:
        self.requests = requests
        self.retention_s = retention_s
        self.undo = undo
        # The only text put into a statement is the table name, checked by LedgerTable against
        # DynamoDB's own character set (so it cannot leave its quotes); every value is a parameter.
        self.insert_claim = (
            f'INSERT INTO "{requests.name}" VALUE '
            "{'paymentKey': ?, 'status': ?, 'claimant': ?, 'claimExpiresAt': ?, 'expiresAt': ?}"
        )

    @traced(capture_response=False)
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
            expires = {"N": str(until_ms // 1000 + DAY_S)}
            self.requests.execute(
                self.insert_claim,
                {
                    key: [{"S": key}, {"S": CLAIMED}, {"S": claimant}, {"N": str(until_ms)}, expires]
                    for key in keys
                },
                inserted,
            )
            refused = [key for key in keys if not inserted[key]]
            items = self.requests.read(refused)  # why: created, claimed by someone, or a claim that expired
            out = {
                key: Entry(CLAIMED)
                if inserted[key]
                else entry_or_claim(items.get(key), claimant, now, (versions or {}).get(key), upsert)
                for key in keys
            }
            held = [key for key in refused if out[key].state == CLAIMED]
            take = lambda key: self._take_over(key, claimant, now, until_ms, items.get(key), out[key])  # noqa: E731
            futures = {key: self.requests.pool.submit(take, key) for key in held}
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
            for undo in (lambda: self.undo.restore(applied), lambda: self.undo.release(ours, claimant)):
                try:
                    undo()
                except LedgerUnavailable:
                    pass
            if isinstance(error, LedgerUnavailable):
                raise
            raise LedgerUnavailable(f"ledger claim failed ({error_code(error)})") from None
        return out

    def _take_over(
        self, key: str, claimant: str, now_ms: int, until_ms: int, item: Mapping | None, entry: Entry
    ) -> bool:
        """Claim a key that ``take_over_condition`` lets us take, if it still is as read when we write."""
        condition, values = take_over_condition(item, entry, claimant, now_ms)
        expires_s = int(clock.wall()) + self.retention_s
        claim = item_of(
            key, CLAIMED, entry, expires_s, claimant={"S": claimant}, claimExpiresAt={"N": str(until_ms)}
        )
        if not entry.applied:  # a claim alone is forgotten a day after it ends
            claim["expiresAt"] = {"N": str(until_ms // 1000 + DAY_S)}
        try:
            self.requests.client.put_item(
                TableName=self.requests.name,
                Item=claim,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True
