"""The simulated HubSpot: commerce_payments batch/create, batch/upsert and batch/read, in process, on
virtual time.

``SimHubSpot`` stands in for ``payments_drain.adapters.hubspot.HubSpotClient`` (the same ``write_batch``,
``read_batch`` and ``min_call_s``). It follows the local sandbox (local/hubspot_sandbox,
docs/sandbox.md): it reuses the sandbox's validation (``schema``) and its pure body builders, so
errors and reads read exactly alike, and tests/contract/test_hubspot_contract.py holds the rest
(storing, unique values, upsert, reading, rate limits, faults) to the sandbox. Deterministic: time
only from ``clock``, randomness only from ``rng``, no threads, no real sleeping.

A call takes ``latency`` of virtual time: the request reaches HubSpot halfway (it is counted,
checked and stored then) and the answer comes at the end. Like HubSpotClient, a call gives up at
``time_left_s`` (at most the read timeout while it waits for the answer): a request that reached
HubSpot before that was applied all the same, as with a real timeout.
"""

from __future__ import annotations

import copy
import json
from collections import Counter, deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from payments_drain.adapters.hubspot import AnswerTimes, read_body
from payments_drain.core import limits
from payments_drain.core.batching import Answer

from local.hubspot_sandbox import schema
from local.hubspot_sandbox.server import (
    SandboxHandler,
    _error,
    _phrase,
    _sub_errors,
    _summary,
    conflict_item,
    read_problem,
    read_reply,
)
from local.hubspot_sandbox.state import FIRST_ID

# One uniform draw per call picks at most one fault, in this order (cumulative, as the sandbox does).
FAULTS = (
    "connect_error",  # the request never left (after the connect timeout): Answer(None, error="connect")
    "reset",  # reset before anything was stored: Answer(None, error="protocol")
    "429",  # 429 TEN_SECONDLY_ROLLING, nothing stored
    "5xx",  # 500/502/503/504, nothing stored
    "stored_then_5xx",  # stored, then 502
    "stored_then_timeout",  # stored, then no answer: Answer(None, error="timeout")
    "unreadable_2xx",  # stored, then the 2xx status with an HTML page (body None, as HubSpotClient reads it)
    "2xx_with_errors",  # a 207 sent as 201 (create) or 200 (upsert) with numErrors and errors[]
)
OUTAGE_KINDS = ("503", "connect", "hang")
CATEGORY_5XX = {500: "INTERNAL_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT"}
JSON = {"Content-Type": "application/json;charset=utf-8"}
HTML = {"Content-Type": "text/html; charset=UTF-8"}


@dataclass(frozen=True)
class HubSpotFaults:
    """Faults, all drawn from the simulation's rng; the ``p_*`` add up to at most 1. ``outages``:
    (start epoch s, end epoch s, kind) with kind "503" (counted, answered 503), "connect" (nothing
    sent) or "hang" (nothing stored, no answer until the call gives up)."""

    latency_s: float = 0.0
    latency_jitter_s: float = 0.0  # plus uniform 0..jitter
    p_connect_error: float = 0.0
    p_reset: float = 0.0
    p_429: float = 0.0
    p_5xx: float = 0.0
    p_stored_then_5xx: float = 0.0
    p_stored_then_timeout: float = 0.0
    p_unreadable_2xx: float = 0.0
    p_2xx_with_errors: float = 0.0
    outages: Sequence[tuple[float, float, str]] = ()

    def __post_init__(self) -> None:
        if sum(getattr(self, f"p_{name}") for name in FAULTS) > 1:
            raise ValueError("fault probabilities add up to more than 1")
        if any(kind not in OUTAGE_KINDS for _, _, kind in self.outages):
            raise ValueError(f"an outage kind is one of {OUTAGE_KINDS}")


@dataclass(frozen=True)
class Write:
    """One write applied to a payment (ground truth): when, which record, whether it created it, and
    the record's properties after it."""

    at: float
    id: str
    new: bool
    properties: dict[str, str]


class SimHubSpot:
    def __init__(
        self,
        clock: Any,
        rng: Random,
        *,
        write_mode: str = "create",
        unique_property: str | None = None,
        limit_per_10s: int = limits.HUBSPOT_PER_10S_PROFESSIONAL.value,
        daily_limit: int = limits.HUBSPOT_DAILY_PROFESSIONAL.value,
        account_timezone: str = "America/New_York",
        faults: HubSpotFaults | None = None,
        key_of: Callable[[dict[str, Any]], str] | None = None,
        tokens: Collection[str] | None = None,  # None: any token is valid
        connect_timeout_s: float = 3.05,  # HubSpotClient's defaults (a contract test checks)
        read_timeout_s: float = 15.0,
    ) -> None:
        if write_mode not in ("create", "upsert"):
            raise ValueError("write_mode is create or upsert")
        self.clock, self.rng = clock, rng
        self.write_mode, self.unique_property = write_mode, unique_property
        self.known = frozenset([unique_property] if unique_property else [])
        self.limit_per_10s, self.daily_limit = limit_per_10s, daily_limit
        self.zone = ZoneInfo(account_timezone)
        self.faults = faults or HubSpotFaults()
        self.key_of = key_of or self._default_key
        self.tokens = tokens
        self.connect_timeout_s, self.read_timeout_s = connect_timeout_s, read_timeout_s
        self.answer_times = AnswerTimes()  # HubSpotClient's, for the same min_call_s
        self._window: deque[float] = deque()  # admission times in the rolling window (one app)
        self._calls = 0
        # Ground truth for invariant checks.
        self.records: list[dict[str, Any]] = []  # every stored payment, in creation order
        self.by_id: dict[str, dict[str, Any]] = {}
        self.by_unique: dict[str, str] = {}  # unique property value -> record id
        self.ids_by_key: dict[str, list[str]] = {}  # key -> ids of the records created for it
        self.writes: dict[str, list[Write]] = {}  # key -> every write applied to it, in order
        self.daily: Counter[str] = Counter()  # requests counted per account-local day (ISO date)
        self.max_in_window = 0  # the most requests counted in any rolling window
        self.rate_limited: Counter[str] = Counter()  # 429s by policy (limits and injected)
        self.statuses: Counter[str] = Counter()  # answers by status, or "connect"/"timeout"/"protocol"
        self.reads: Counter[str] = (
            Counter()
        )  # batch/reads whose answer came readable ("answered"), records "found"

    # ------------------------------------------------------------------ HubSpotClient's interface
    def min_call_s(self) -> float:
        """As HubSpotClient: the connect timeout plus the 90th percentile of the last answers."""
        return self.connect_timeout_s + self.answer_times.expected_s()

    def write_batch(
        self, inputs: Sequence[dict[str, Any]], token: str, time_left_s: float | None = None
    ) -> Answer:
        inputs = json.loads(json.dumps(list(inputs)))  # what travels: a copy, as JSON
        return self._call(time_left_s, lambda fault, outage: self._serve(inputs, token, fault, outage))

    def read_batch(
        self,
        ids: Sequence[str],
        token: str,
        properties: Sequence[str] = (),
        id_property: str | None = None,
        time_left_s: float | None = None,
    ) -> Answer:
        """batch/read as HubSpotClient.read_batch sends it: HubSpot ids, or values of ``id_property``.
        Counted in the rate limits like a write; the same draw of faults, as a read meets them:
        nothing is stored, so a fault after storing is a 502, no answer, or an unreadable 200."""
        body = json.loads(json.dumps(read_body(ids, properties, id_property)))  # what travels: a copy
        answer = self._call(time_left_s, lambda fault, outage: self._serve_read(body, token, fault, outage))
        if answer.status in (200, 207) and isinstance(answer.body, dict):  # the caller learnt what is stored
            self.reads.update(answered=1, found=len(answer.body["results"]))
        return answer

    def _call(self, time_left_s: float | None, serve: Callable[..., tuple[Any, ...]]) -> Answer:
        """One exchange on virtual time: ``serve(fault, outage)`` is HubSpot at the request's arrival."""
        started = self.clock.wall()
        limit = self.connect_timeout_s + self.read_timeout_s if time_left_s is None else max(0.1, time_left_s)
        give_up = started + min(limit, self.read_timeout_s)
        fault = self._draw_fault()
        latency = self.faults.latency_s
        if self.faults.latency_jitter_s > 0:
            latency += self.rng.uniform(0.0, self.faults.latency_jitter_s)
        outage = next((k for start, end, k in self.faults.outages if start <= started < end), None)
        if outage == "connect" or fault == "connect_error":
            self.clock.sleep(min(self.connect_timeout_s, limit))
            return self._no_answer("connect", started)
        arrives, answered = started + latency / 2, started + latency
        if outage == "hang" or arrives > give_up:
            return self._timeout(give_up, started)
        self._sleep_until(arrives)
        status, body, headers, error = serve(fault, outage)
        if error == "protocol":
            return self._no_answer(error, started)
        if error == "timeout" or answered > give_up:
            return self._timeout(give_up, started)
        self._sleep_until(answered)
        self.answer_times.add(self.clock.wall() - started)
        self.statuses[str(status)] += 1
        return Answer(status, body, headers, latency_ms=_ms(self.clock.wall() - started))

    # ------------------------------------------------------------------ ground truth
    def count(self, key: str) -> int:
        """How many payments exist for ``key`` (more than 1 is a duplicate)."""
        return len(self.ids_by_key.get(key, []))

    def in_window(self) -> int:
        """Requests counted in the rolling window now."""
        self._prune(self.clock.wall())
        return len(self._window)

    # ------------------------------------------------------------------ one call
    def _draw_fault(self) -> str | None:
        draw, acc = self.rng.random(), 0.0
        for name in FAULTS:
            acc += getattr(self.faults, f"p_{name}")
            if draw < acc:
                return name
        return None

    def _sleep_until(self, at: float) -> None:
        self.clock.sleep(max(0.0, at - self.clock.wall()))

    def _no_answer(self, error: str, started: float) -> Answer:
        self.statuses[error] += 1
        return Answer(None, error=error, latency_ms=_ms(self.clock.wall() - started))

    def _timeout(self, give_up: float, started: float) -> Answer:
        self._sleep_until(give_up)
        return self._no_answer("timeout", started)

    def _arrive(
        self, token: str, fault: str | None, outage: str | None, category_5xx: Callable[[int], str]
    ) -> tuple[str, dict[str, str], tuple[int | None, Any, dict[str, str], str | None] | None]:
        """A request reaching HubSpot: its correlation id, headers, and the answer when it ends here
        (the token refused, a rate limit, an outage, a fault before anything is done), else None."""
        self._calls += 1
        cid = f"00000000-0000-4000-8000-{self._calls:012d}"  # a correlation id, deterministic
        if self.tokens is not None and token not in self.tokens:
            body = _error(
                "The OAuth token used to make this call is invalid or was revoked.",
                "INVALID_AUTHENTICATION",
                cid,
            )
            return cid, {}, (401, body, self._headers(cid), None)
        policy = self._admit()
        headers = self._headers(cid)
        if policy is not None:
            return cid, headers, (429, self._rate_limit_body(policy, cid), headers, None)
        if outage == "503":
            body = _error("Service Unavailable (outage)", "SERVICE_UNAVAILABLE", cid)
            return cid, headers, (503, body, headers, None)
        if fault == "reset":
            return cid, headers, (None, None, {}, "protocol")
        if fault == "429":
            self.rate_limited["TEN_SECONDLY_ROLLING"] += 1
            headers["X-HubSpot-RateLimit-Remaining"] = "0"
            return cid, headers, (429, self._rate_limit_body("TEN_SECONDLY_ROLLING", cid), headers, None)
        if fault == "5xx":
            code = self.rng.choice(sorted(CATEGORY_5XX))
            return cid, headers, (code, _error(_phrase(code), category_5xx(code), cid), headers, None)
        return cid, headers, None

    def _serve_read(
        self, data: dict[str, Any], token: str, fault: str | None, outage: str | None
    ) -> tuple[int | None, Any, dict[str, str], str | None]:
        """batch/read at the request's arrival, with the sandbox's pure builders (``read_problem``,
        ``read_reply``); its 5xx say INTERNAL_ERROR, as the sandbox's read faults do."""
        cid, headers, ended = self._arrive(token, fault, outage, lambda code: "INTERNAL_ERROR")
        if ended is not None:
            return ended
        if fault == "stored_then_5xx":
            return 502, _error(_phrase(502), "INTERNAL_ERROR", cid), headers, None
        if fault == "stored_then_timeout":
            return None, None, {}, "timeout"
        if (refused := read_problem(data, self.known, cid)) is not None:
            return 400, refused, headers, None
        status, body = read_reply(data, self._find, self._shuffled, self._iso)
        if fault == "unreadable_2xx":
            return status, None, {**headers, **HTML}, None
        return status, body, headers, None

    def _find(self, id_property: str | None, value: str) -> dict[str, Any] | None:
        pid = self.by_unique.get(value) if id_property else value
        return self.by_id.get(pid) if pid is not None else None

    def _shuffled(self, items: list[Any]) -> list[Any]:
        items = list(items)
        self.rng.shuffle(items)  # HubSpot answers in no guaranteed order
        return items

    def _serve(
        self, inputs: list[Any], token: str, fault: str | None, outage: str | None
    ) -> tuple[int | None, Any, dict[str, str], str | None]:
        """HubSpot at the request's arrival: (status, body, headers, or an error for no answer)."""
        cid, headers, ended = self._arrive(token, fault, outage, CATEGORY_5XX.__getitem__)
        if ended is not None:
            return ended
        status, body = (self._create if self.write_mode == "create" else self._upsert)(inputs, cid)
        if status in (200, 201, 207):  # stored: the post-store faults apply
            if fault == "stored_then_timeout":
                return None, None, {}, "timeout"
            if fault == "stored_then_5xx":
                return 502, _error(_phrase(502), "INTERNAL_ERROR", cid), headers, None
            if fault == "unreadable_2xx":
                return status, None, {**headers, **HTML}, None
            if fault == "2xx_with_errors" and status == 207:
                status = 201 if self.write_mode == "create" else 200
        return status, body, headers, None

    # ------------------------------------------------------------------ rate limits
    def _prune(self, now: float) -> None:
        cutoff = now - limits.HUBSPOT_WINDOW_MS.value / 1000
        while self._window and self._window[0] <= cutoff:
            self._window.popleft()

    def _today(self) -> str:
        return datetime.fromtimestamp(self.clock.wall(), self.zone).date().isoformat()

    def _admit(self) -> str | None:
        """Count the request, or say which policy refuses it (a refused request is not counted)."""
        now = self.clock.wall()
        self._prune(now)
        if self.daily[self._today()] >= self.daily_limit:
            policy = "DAILY"
        elif len(self._window) >= self.limit_per_10s:
            policy = "TEN_SECONDLY_ROLLING"
        else:
            self._window.append(now)
            self.daily[self._today()] += 1
            self.max_in_window = max(self.max_in_window, len(self._window))
            return None
        self.rate_limited[policy] += 1
        return policy

    def _headers(self, cid: str) -> dict[str, str]:
        self._prune(self.clock.wall())
        return {
            **JSON,
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(limits.HUBSPOT_WINDOW_MS.value),
            "X-HubSpot-RateLimit-Max": str(self.limit_per_10s),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.limit_per_10s - len(self._window))),
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - self.daily[self._today()])),
            "X-HubSpot-Correlation-Id": cid,
        }

    @staticmethod
    def _rate_limit_body(policy: str, cid: str) -> dict[str, Any]:
        name = "ten_secondly_rolling" if policy == "TEN_SECONDLY_ROLLING" else "daily"
        return {
            "status": "error",
            "message": f"You have reached your {name} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": cid,
            "policyName": policy,
            "groupName": "sim:commerce_payments",
        }

    # ------------------------------------------------------------------ batch/create and batch/upsert
    def _whole_request_problem(self, inputs: list[Any], cid: str) -> dict[str, Any] | None:
        if not inputs:
            return _error("Invalid input: inputs must contain at least one input", "VALIDATION_ERROR", cid)
        most = limits.HUBSPOT_BATCH_INPUTS.value
        if len(inputs) > most:
            return _error(
                f"Batch input limit exceeded: {len(inputs)} inputs received, at most {most} allowed",
                "VALIDATION_ERROR",
                cid,
                errors=[
                    {"message": "Too many inputs", "code": "TOO_MANY_INPUTS", "in": "inputs", "context": {}}
                ],
            )
        return None

    def _create(self, inputs: list[Any], cid: str) -> tuple[int, dict[str, Any]]:
        if (refused := self._whole_request_problem(inputs, cid)) is not None:
            return 400, refused
        started = self._iso()
        problems = [schema.validate_input(item, self.known) for item in inputs]
        trace_ids, multi_status = SandboxHandler._trace_ids(inputs, problems)
        if not multi_status and any(problems):
            return 400, _invalid_request(problems, cid)
        unique = self.unique_property
        conflicts: dict[int, tuple[str, str | None]] = {}  # input index -> (value, existing id)
        first_in_batch: dict[str, int] = {}
        for i, item in enumerate(inputs):
            value = (
                schema.stored_text(item["properties"].get(unique, "")) if unique and not problems[i] else ""
            )
            if value in self.by_unique:
                conflicts[i] = (value, self.by_unique[value])
            elif value in first_in_batch:
                conflicts[i] = (value, None)  # the first one's id, once stored
            elif value:
                first_in_batch[value] = i
        if conflicts and not multi_status:
            return 409, _conflict_409(unique, conflicts, cid)
        results, ids = [], {}
        for i, item in enumerate(inputs):
            if problems[i] or i in conflicts:
                continue
            properties = schema.stored_properties(item["properties"])
            record = self._store_new(properties, item.get("associations") or [], trace_ids[i], item)
            ids[i] = record["id"]
            results.append(SandboxHandler._result(record, trace_ids[i], True))
        errors = [SandboxHandler._error_item(ps, trace_ids[i]) for i, ps in enumerate(problems) if ps]
        for i, (value, existing) in sorted(conflicts.items()):
            existing = existing or ids[first_in_batch[value]]
            errors.append(conflict_item(unique, value, existing, trace_ids[i]))
        return (207 if errors else 201), self._batch_body(started, results, errors)

    def _upsert(self, inputs: list[Any], cid: str) -> tuple[int, dict[str, Any]]:
        if (refused := self._whole_request_problem(inputs, cid)) is not None:
            return 400, refused
        started = self._iso()
        unique = self.unique_property
        problems = [schema.validate_input(item, self.known, upsert=True) for item in inputs]
        for i, item in enumerate(inputs):
            if isinstance(item, dict) and (not unique or item.get("idProperty") != unique):
                message = (
                    f"idProperty {json.dumps(item.get('idProperty'))} is not a unique-value property of "
                    "commerce_payments"
                )
                problems[i].append(schema.problem("INVALID_ID_PROPERTY", message, "idProperty"))
        ids = Counter(
            item.get("id") for item in inputs if isinstance(item, dict) and isinstance(item.get("id"), str)
        )
        if dups := sorted(value for value, n in ids.items() if n > 1):
            errors = [
                {"message": f"Duplicate id {v}", "code": "DUPLICATE_ID", "in": "id", "context": {"id": [v]}}
                for v in dups
            ]
            message = f"Duplicate IDs found in batch input: {dups}. IDs must be unique"
            return 400, _error(message, "VALIDATION_ERROR", cid, errors=errors, context={}, links={})
        trace_ids, multi_status = SandboxHandler._trace_ids(inputs, problems)
        if not multi_status and any(problems):
            return 400, _invalid_request(problems, cid)
        changes = {
            i: {
                k: v for k, v in schema.stored_properties(item.get("properties") or {}).items() if k != unique
            }
            for i, item in enumerate(inputs)
            if not problems[i]
        }
        for i, props in changes.items():  # a new payment needs its required properties
            if inputs[i]["id"] not in self.by_unique:
                problems[i] += schema.missing_required({**props, unique: inputs[i]["id"]})
        if not multi_status and any(problems):
            return 400, _invalid_request(problems, cid)
        results = []
        for i, props in changes.items():
            if problems[i]:
                continue
            key, new = inputs[i]["id"], inputs[i]["id"] not in self.by_unique
            if new:
                record = self._store_new({**props, unique: key}, [], trace_ids[i], inputs[i])
            else:
                record = self.by_id[self.by_unique[key]]
                stamp = self._iso()
                record["properties"] = schema.held(
                    {**record["properties"], **props, "hs_lastmodifieddate": stamp}
                )
                record["updatedAt"] = stamp
                self._note_write(inputs[i], record, new=False)
            results.append({**SandboxHandler._result(record, trace_ids[i], True), "new": new})
        errors = [SandboxHandler._error_item(ps, trace_ids[i]) for i, ps in enumerate(problems) if ps]
        return (207 if errors else 200), self._batch_body(started, results, errors)

    # ------------------------------------------------------------------ storing
    def _store_new(
        self, properties: dict[str, str], associations: list[Any], trace_id: Any, item: dict[str, Any]
    ) -> dict[str, Any]:
        pid, stamp = str(FIRST_ID + len(self.records)), self._iso()
        properties = schema.held(properties)
        properties.update({"hs_object_id": pid, "hs_createdate": stamp, "hs_lastmodifieddate": stamp})
        record = {
            "id": pid,
            "properties": properties,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
            "associations": associations,
            "objectWriteTraceId": trace_id,
        }
        self.records.append(record)
        self.by_id[pid] = record
        if self.unique_property and properties.get(self.unique_property):
            self.by_unique.setdefault(properties[self.unique_property], pid)
        self.ids_by_key.setdefault(self.key_of(item), []).append(pid)
        self._note_write(item, record, new=True)
        return record

    def _note_write(self, item: dict[str, Any], record: dict[str, Any], *, new: bool) -> None:
        write = Write(self.clock.wall(), record["id"], new, copy.deepcopy(record["properties"]))
        self.writes.setdefault(self.key_of(item), []).append(write)

    def _default_key(self, item: dict[str, Any]) -> str:
        """The payment's key: the upsert id, else the unique property's value, else the trace id."""
        if self.write_mode == "upsert":
            return str(item.get("id"))
        if self.unique_property and self.unique_property in (item.get("properties") or {}):
            return schema.stored_text(item["properties"][self.unique_property])
        return str(item.get("objectWriteTraceId"))

    def _batch_body(self, started: str, results: list[Any], errors: list[Any]) -> dict[str, Any]:
        self.rng.shuffle(results)  # HubSpot answers in no guaranteed order
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            self.rng.shuffle(errors)
            body.update(numErrors=len(errors), errors=errors)
        body.update(startedAt=started, completedAt=self._iso())
        return body

    def _iso(self) -> str:
        moment = datetime.fromtimestamp(self.clock.wall(), timezone.utc)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _invalid_request(problems: list[list[dict[str, str]]], cid: str) -> dict[str, Any]:
    flat = [p for ps in problems for p in ps]
    return _error(_summary(flat), "VALIDATION_ERROR", cid, errors=_sub_errors(flat), context={}, links={})


def _conflict_409(
    unique: str | None, conflicts: dict[int, tuple[str, str | None]], cid: str
) -> dict[str, Any]:
    """Without trace ids a unique-value conflict refuses the whole request (the sandbox's 409)."""
    value, first = conflicts[min(conflicts)]
    if first:
        message = f'A payment with {unique} "{value}" already exists. Existing ID: {first}'
    else:
        message = f'{unique} "{value}" appears more than once in this request; it must be unique'
    errors = [
        {
            "message": f'{unique} "{v}" already exists'
            + (f". Existing ID: {e}" if e else " in this request"),
            "code": "DUPLICATE_UNIQUE_VALUE",
            "in": unique,
            "context": {"propertyName": [unique], **({"existingId": [e]} if e else {})},
        }
        for _, (v, e) in sorted(conflicts.items())
    ]
    existing = sorted({e for _, e in conflicts.values() if e})
    context = {"existingId": existing, "propertyName": [unique]}
    return _error(message, "CONFLICT", cid, errors=errors, context=context, links={})
