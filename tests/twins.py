"""In-memory twins of the adapters, for unit tests of the core and the orchestration.

Each has the same small interface as its real adapter (``payments_drain.adapters.hubspot``,
``.token``, ``.ledger``, ``.reports``); the same behaviours are re-run against the real
adapters over loopback in tests/integration.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payments_drain.adapters.ledger import AMBIGUOUS, CLAIMED, CREATED, Entry, entry_or_claim
from payments_drain.adapters.token import TokenUnavailable
from payments_drain.core.batching import Answer

CANARY_TOKEN = "pat-na1-CANARY-5f0c1e2d-never-log-me"


class StaticToken:
    """Serves tokens[0]; each forced read (past the cache) moves on to the next, as a rotation."""

    def __init__(self, tokens: Sequence[str] = (CANARY_TOKEN,), fail: bool = False) -> None:
        self.tokens = list(tokens)
        self.index = 0
        self.forced = 0
        self.fail = fail

    def get(self, force: bool = False) -> str:
        if self.fail:
            raise TokenUnavailable("cannot read the HubSpot token secret (ResourceNotFoundException)")
        if force:
            self.forced += 1
            self.index = min(self.index + 1, len(self.tokens) - 1)
        return self.tokens[self.index]


class ScriptedHubSpot:
    """Answers each call with the next scripted answer; a callable gets the inputs and returns
    an Answer. Without a script, every input is created (201, trace ids echoed)."""

    def __init__(self, script: Iterable[Answer | Callable[[list[dict]], Answer]] = ()) -> None:
        self.script = list(script)
        self.calls: list[tuple[list[dict], str]] = []
        self.link_script: list[Answer | Callable[[list[dict]], Answer]] = []
        self.link_calls: list[tuple[str, list[dict]]] = []
        self.lock = threading.Lock()

    def min_call_s(self) -> float:
        return 1.0  # HubSpotClient's estimate before it has seen an answer, less its connect timeout

    def write_batch(self, inputs, token, time_left_s=None) -> Answer:
        with self.lock:
            self.calls.append((list(inputs), token))
            step = self.script.pop(0) if self.script else created
        return step(list(inputs)) if callable(step) else step

    def write_links(self, to_type, inputs, token, time_left_s=None) -> Answer:
        """Upsert mode's link calls: recorded in ``link_calls``; scripted by ``link_script``
        (each input linked, 201, when it is empty)."""
        with self.lock:
            self.link_calls.append((to_type, list(inputs)))
            step = self.link_script.pop(0) if self.link_script else linked
        return step(list(inputs)) if callable(step) else step


def created(inputs: list[dict], status: int = 201, errors: Sequence[dict] = ()) -> Answer:
    failed = {e["context"]["objectWriteTraceId"][0] for e in errors}
    results = [
        {
            "id": str(int(hashlib.sha1(i["objectWriteTraceId"].encode()).hexdigest()[:8], 16)),
            "properties": i["properties"],
            "objectWriteTraceId": i["objectWriteTraceId"],
            "createdAt": "2026-11-27T10:00:00Z",
            "updatedAt": "2026-11-27T10:00:00Z",
            "archived": False,
        }
        for i in reversed(inputs)
        if i["objectWriteTraceId"] not in failed
    ]
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body.update(numErrors=len(errors), errors=list(errors))
    return Answer(status, body, {"X-HubSpot-RateLimit-Remaining": "150", "X-HubSpot-RateLimit-Max": "190"})


def linked(inputs: list[dict], status: int = 201, errors: Sequence[dict] = ()) -> Answer:
    """The associations API's answer: a result per input not named by one of ``errors``."""
    named = {v for e in errors for values in e.get("context", {}).values() for v in values}
    results = [
        {"fromObjectId": i["from"]["id"], "toObjectId": i["to"]["id"], "labels": []}
        for i in inputs
        if not any(i["to"]["id"] in str(v) for v in named)
    ]
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body.update(numErrors=len(errors), errors=list(errors))
    return Answer(status, body, {"X-HubSpot-RateLimit-Remaining": "150", "X-HubSpot-RateLimit-Max": "190"})


def validation_error(trace_id: str, code: str = "INVALID_OPTION") -> dict:
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "Property values were not valid",
        "errors": [{"message": "bad", "code": code}],
        "context": {"objectWriteTraceId": [trace_id]},
    }


def error_answer(
    status: int, category: str = "", headers: Mapping[str, str] | None = None, **extra
) -> Answer:
    body = {
        "status": "error",
        "message": f"HTTP {status}",
        "correlationId": "corr-1",
        "category": category,
        **extra,
    }
    return Answer(status, body, dict(headers or {}))


class InMemoryLedger:
    """The ledger's twin: DynamoLedger's semantics, a dict under a lock."""

    def __init__(self, fail: bool = False) -> None:
        self.items: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.fail = fail

    def claim(
        self,
        keys: Iterable[str],
        claimant: str,
        until_ms: int,
        versions: Mapping[str, int | None] | None = None,
    ) -> dict[str, Entry]:
        from payments_drain.adapters.ledger import LedgerUnavailable

        if self.fail:
            raise LedgerUnavailable("ledger claim failed (ResourceNotFoundException)")
        now = int(time.time() * 1000)
        out: dict[str, Entry] = {}
        with self.lock:
            for key in keys:
                out[key] = entry_or_claim(
                    self.items.get(key), claimant, now, (versions or {}).get(key), versions is not None
                )
                if out[key].state == CLAIMED:
                    self.items[key] = {
                        **self._kept(out[key]),
                        "status": CLAIMED,
                        "claimant": claimant,
                        "claimExpiresAt": until_ms,
                    }
        return out

    def record_created(
        self,
        created: Mapping[str, str | None],
        versions: Mapping[str, int | None] | None = None,
        links_pending: Iterable[str] = (),
    ) -> None:
        pending = set(links_pending)
        with self.lock:
            for key, hubspot_id in created.items():
                self.items[key] = {"status": CREATED, "hubspotId": hubspot_id}
                if (versions or {}).get(key) is not None:
                    self.items[key]["version"] = versions[key]
                if key in pending:
                    self.items[key]["linksPending"] = True

    def mark_ambiguous(self, entries: Mapping[str, Entry]) -> None:
        with self.lock:
            for key, entry in entries.items():
                self.items[key] = {**self._kept(entry), "status": AMBIGUOUS}

    def restore(self, entries: Mapping[str, Entry]) -> None:
        with self.lock:
            for key, entry in entries.items():
                self.items[key] = {**self._kept(entry), "status": CREATED}

    @staticmethod
    def _kept(entry: Entry) -> dict:
        kept = {"hubspotId": entry.hubspot_id, "applied": entry.applied}
        if entry.links_pending:
            kept["linksPending"] = True
        return {**kept, "version": entry.version} if entry.version is not None else kept

    def release(self, keys: Iterable[str], claimant: str) -> None:
        with self.lock:
            for key in keys:
                item = self.items.get(key)
                if item and item["status"] == CLAIMED and item.get("claimant") == claimant:
                    del self.items[key]


class InMemoryReporter:
    def __init__(self, fail_ids: Sequence[str] = (), fail_all: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail_ids = set(fail_ids)
        self.fail_all = fail_all

    def send(self, reports: Sequence[dict[str, Any]]) -> set[str]:
        if self.fail_all:
            raise ConnectionError("sqs unreachable")
        failed = {r["messageId"] for r in reports if r["messageId"] in self.fail_ids}
        self.sent.extend(json.loads(json.dumps(r)) for r in reports if r["messageId"] not in failed)
        return failed


class InMemoryVisibility:
    """The payments queue's visibility, as SqsVisibility changes it: receipt handle -> seconds."""

    def __init__(self) -> None:
        self.held: dict[str, int] = {}
        self.queue_arns: set[str] = set()

    def hold(self, queue_arn: str, holds: Mapping[str, int]) -> int:
        self.queue_arns.add(queue_arn)
        self.held.update(holds)
        return 0


def sqs_record(
    body: Any,
    message_id: str,
    receive_count: int = 1,
    group_id: str | None = None,
    queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:payments",
    sent_ms: int | None = None,
) -> dict[str, Any]:
    """A record in exactly Lambda's shape (what Powertools' SqsRecordModel requires); sent
    ``sent_ms`` (default: now) and first received 100 ms later."""
    text = body if isinstance(body, str) else json.dumps(body)
    sent_ms = int(time.time() * 1000) if sent_ms is None else sent_ms
    attributes = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": str(sent_ms),
        "SenderId": "AIDAEXAMPLE",
        "ApproximateFirstReceiveTimestamp": str(sent_ms + 100),
    }
    if group_id is not None:
        attributes.update(MessageGroupId=group_id, SequenceNumber="1", MessageDeduplicationId=message_id)
        queue_arn += ".fifo"
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": text,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


def payment_body(key: str | None = None, amount: str = "49.90", **properties: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "properties": {
            "hs_initial_amount": amount,
            "hs_initiated_date": "2026-11-27T10:00:00Z",
            "hs_currency_code": "EUR",
            **properties,
        }
    }
    if key is not None:
        body["paymentKey"] = key
    return body


@dataclass
class LambdaContext:
    """The Lambda context a handler needs, as in Powertools' own test examples."""

    function_name: str = "payments-drain"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "req-1"
    remaining_ms: int = 60_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def import_app(path: Path):
    """Import a function's app.py as a cold start does: a fresh module each time (the drain's and the
    replay's are both called ``app``, and each reads its environment at import)."""
    spec = importlib.util.spec_from_file_location(f"{path.parent.name}_app_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
