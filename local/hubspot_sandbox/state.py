"""Thread-safe sandbox state: configuration, stored payments and their indexes, rate-limit windows,
counters and the seeded random generators. Every mutation happens under one lock, held briefly."""

from __future__ import annotations

import copy
import random
import threading
import time
from collections import Counter, deque
from datetime import datetime, timezone
from typing import Any

from .config import (
    FAULT_DEFAULTS,
    SandboxConfig,
    normalise_faults,
    normalise_labels,
    normalise_missing,
    normalise_rules,
    normalise_tokens,
)
from .schema import built_in_definition, held

FIRST_ID = 10_000_000_001
MAX_UNIQUE_PROPERTIES = 10  # per object type (docs/hubspot.md)
TIMELINE_MAX = 100_000  # public requests kept for GET /_sandbox/timeline (the newest)
#: The sandbox's stand-in for HubSpot's own payment property group (its real name is not documented).
BUILT_IN_GROUP = "paymentinformation"

# Order in which a single uniform draw is mapped onto fault outcomes (cumulative probabilities).
FAULT_ORDER = (
    ("reset", "p_reset"),
    ("429", "p_429"),
    ("423", "p_423"),
    ("477", "p_477"),
    ("500", "p_500"),
    ("502", "p_502"),
    ("503", "p_503"),
    ("504", "p_504"),
    ("reset_after_store", "p_reset_after_store"),
    ("stored_then_timeout", "p_stored_then_timeout"),
    ("stored_then_error", "p_stored_then_error"),
    ("truncated", "p_truncated"),
    ("trickle", "p_trickle"),
    ("stored_then_unreadable", "p_stored_then_unreadable"),
    ("2xx_with_errors", "p_2xx_with_errors"),
    ("hang", "p_hang"),
    ("daily_spell", "p_daily_spell"),
)


def iso_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        self.lock = threading.Lock()
        self.generation = 0  # bumped by reset(); late replies from before a reset are not counted
        self.initial_config = copy.deepcopy(config)
        self._apply_config(copy.deepcopy(config))
        self._clear()

    # ----------------------------------------------------------------- configuration
    def _apply_config(self, config: SandboxConfig) -> None:
        self.tokens: dict[str, dict[str, Any]] = config.tokens
        self.rate_limit_max = config.rate_limit_per_10s
        self.interval_ms = config.rate_limit_interval_ms
        self.daily_limit = config.daily_limit
        self.echo_trace_id = config.echo_trace_id
        self.unique_property: str | None = config.unique_property
        self.extra_properties: list[str] = list(config.extra_properties)
        self.seed = config.seed
        self.faults: dict[str, Any] = normalise_faults(config.faults)
        self.missing_records = config.missing_records
        self.association_labels = config.association_labels
        self.write_rules = config.write_rules
        # The account's custom property definitions and property groups, as the properties API keeps
        # them. The configured ones are made as if that API had created them.
        self.groups: dict[str, dict[str, Any]] = {
            BUILT_IN_GROUP: group_definition(BUILT_IN_GROUP, "Payment information")
        }
        self.properties: dict[str, dict[str, Any]] = {}
        self._configured_properties()
        self._reseed()

    def _configured_properties(self) -> None:
        """(Re)define the properties the configuration names; the API-created ones stay."""
        self.properties = {n: d for n, d in self.properties.items() if d["origin"] == "api"}
        for name in self.extra_properties:
            self.properties.setdefault(
                name, property_definition(name, name, "string", "text", BUILT_IN_GROUP, False, "config")
            )
        if self.unique_property:
            self.properties[self.unique_property] = property_definition(
                self.unique_property, self.unique_property, "string", "text", BUILT_IN_GROUP, True, "config"
            )
        self._refresh_known()

    def _refresh_known(self) -> None:
        """Custom property names (writable) and the unique ones, with their values indexed."""
        self.known_extra = frozenset(self.properties)
        self.unique_names = tuple(n for n, d in self.properties.items() if d["hasUniqueValue"])
        self.by_unique: dict[str, dict[str, str]] = {name: {} for name in self.unique_names}
        for payment in getattr(self, "payments", []):
            for name in self.unique_names:
                value = payment["properties"].get(name)
                if value:
                    self.by_unique[name].setdefault(value, payment["id"])

    def _reseed(self) -> None:
        self.fault_rng = random.Random(f"faults:{self.seed}")
        self.latency_rng = random.Random(f"latency:{self.seed}")
        self.shuffle_rng = random.Random(f"shuffle:{self.seed}")

    def config_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "tokens": copy.deepcopy(self.tokens),
                "rate_limit_per_10s": self.rate_limit_max,
                "rate_limit_interval_ms": self.interval_ms,
                "daily_limit": self.daily_limit,
                "echo_trace_id": self.echo_trace_id,
                "unique_property": self.unique_property,
                "extra_properties": list(self.extra_properties),
                "seed": self.seed,
                "faults": copy.deepcopy(self.faults),
                "missing_records": copy.deepcopy(self.missing_records),
                "association_labels": copy.deepcopy(self.association_labels),
                "write_rules": copy.deepcopy(self.write_rules),
            }

    def update_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        allowed = {
            "tokens",
            "rate_limit_per_10s",
            "rate_limit_interval_ms",
            "daily_limit",
            "echo_trace_id",
            "unique_property",
            "extra_properties",
            "seed",
            "faults",
            "missing_records",
            "association_labels",
            "write_rules",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(allowed)}")
        with self.lock:
            if "faults" in changes:
                self.faults = normalise_faults(changes["faults"] or {}, self.faults)
            if "tokens" in changes:
                tokens = dict(self.tokens)
                for name, spec in (changes["tokens"] or {}).items():
                    if spec is None:
                        tokens.pop(name, None)
                    else:
                        merged = dict(tokens.get(name, {"scopes": [], "expired": False}))
                        change = spec if isinstance(spec, dict) else {"scopes": list(spec)}
                        if "kind" not in change and "private_app" in change:
                            merged.pop("kind", None)  # the older switch names the kind
                        merged.update(change)
                        tokens.update(normalise_tokens({name: merged}))
                self.tokens = tokens
            if "rate_limit_per_10s" in changes:
                self.rate_limit_max = max(0, int(changes["rate_limit_per_10s"]))
            if "rate_limit_interval_ms" in changes:
                value = int(changes["rate_limit_interval_ms"])
                if value <= 0:
                    raise ValueError("rate_limit_interval_ms must be > 0")
                self.interval_ms = value
            if "daily_limit" in changes:
                self.daily_limit = max(0, int(changes["daily_limit"]))
            if "echo_trace_id" in changes:
                self.echo_trace_id = bool(changes["echo_trace_id"])
            if "extra_properties" in changes:
                self.extra_properties = [str(p) for p in changes["extra_properties"] or []]
            if "unique_property" in changes:
                self.unique_property = changes["unique_property"] or None
            if "extra_properties" in changes or "unique_property" in changes:
                self._configured_properties()
            if "seed" in changes:
                self.seed = int(changes["seed"])
                self._reseed()
            if "missing_records" in changes:
                self.missing_records = normalise_missing(changes["missing_records"])
            if "association_labels" in changes:
                self.association_labels = normalise_labels(changes["association_labels"])
            if "write_rules" in changes:
                self.write_rules = normalise_rules(changes["write_rules"])
        return self.config_dict()

    def set_faults(self, faults: dict[str, Any], *, clear: bool = False) -> dict[str, Any]:
        with self.lock:
            base = dict(FAULT_DEFAULTS) if clear else self.faults
            self.faults = normalise_faults(faults, base)
            return copy.deepcopy(self.faults)

    def reset(self, *, restore_config: bool = False) -> None:
        with self.lock:
            self.generation += 1
            if restore_config:
                self._apply_config(copy.deepcopy(self.initial_config))
            else:
                self._reseed()
            self._clear()

    def _clear(self) -> None:
        self.payments: list[dict[str, Any]] = []
        self.by_id: dict[str, dict[str, Any]] = {}
        self.by_unique = {name: {} for name in self.unique_names}
        self.by_trace: dict[str, list[str]] = {}
        self.traces_stored_more_than_once = 0
        self.updates = 0
        self.links_written = 0  # associations the associations API wrote (new ones only)
        self.next_id = FIRST_ID
        self.windows: dict[str, deque[float]] = {}
        self.all_requests: deque[float] = deque()
        self.daily_used = 0
        self.daily_spell_until = 0.0  # monotonic time a daily-limit spell (fault) ends
        self.requests_total = 0
        self.by_status: Counter[str] = Counter()
        self.by_route: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.rate_limited: Counter[str] = Counter()
        self.inputs_received = 0
        self.max_requests_in_window = 0
        self.max_admitted_in_window = 0
        self.timeline: deque[dict[str, Any]] = deque(maxlen=TIMELINE_MAX)

    # ----------------------------------------------------------------- accounting
    def note_request(self, route: str) -> None:
        """Every public API request, whatever its outcome (for max_requests_in_window)."""
        now = time.monotonic()
        with self.lock:
            self.requests_total += 1
            self.by_route[route] += 1
            cutoff = now - self.interval_ms / 1000.0
            dq = self.all_requests
            while dq and dq[0] <= cutoff:
                dq.popleft()
            dq.append(now)
            if len(dq) > self.max_requests_in_window:
                self.max_requests_in_window = len(dq)

    def note_status(
        self, status: str, generation: int | None = None, timing: dict[str, Any] | None = None
    ) -> None:
        """One answered public request; ``timing`` (arrived, admitted, remaining) goes on the timeline
        with the time the answer is written."""
        answered = time.monotonic()
        with self.lock:
            if generation is None or generation == self.generation:
                self.by_status[status] += 1
                if timing is not None:
                    self.timeline.append({**timing, "answered": answered, "status": status})

    def timeline_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": list(self.timeline),
                "rate_limit_per_10s": self.rate_limit_max,
                "window_ms": self.interval_ms,
                "now": time.monotonic(),
            }

    def note_fault(self, name: str) -> None:
        with self.lock:
            self.faults_injected[name] += 1

    def note_inputs(self, n: int) -> None:
        with self.lock:
            self.inputs_received += n

    # ----------------------------------------------------------------- auth and limits
    def token_spec(self, token: str) -> dict[str, Any] | None:
        with self.lock:
            spec = self.tokens.get(token)
            return copy.deepcopy(spec) if spec is not None else None

    def rate_headers(self, token: str | None) -> dict[str, str]:
        now = time.monotonic()
        with self.lock:
            used = 0
            dq = self.windows.get(token) if token else None
            if dq:
                cutoff = now - self.interval_ms / 1000.0
                while dq and dq[0] <= cutoff:
                    dq.popleft()
                used = len(dq)
            return self._headers(used)

    def _headers(self, used: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.interval_ms),
            "X-HubSpot-RateLimit-Max": str(self.rate_limit_max),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.rate_limit_max - used)),
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(self._daily_remaining()),
        }

    def _daily_remaining(self) -> int:
        if time.monotonic() < self.daily_spell_until:  # a daily-limit spell (fault)
            return 0
        return max(0, self.daily_limit - self.daily_used)

    def admit(self, token: str) -> tuple[str | None, dict[str, str]]:
        """Count one request against the token's rolling window and the daily limit.
        Returns (policy refused or None, rate-limit headers). Refused requests are not counted."""
        now = time.monotonic()
        with self.lock:
            dq = self.windows.setdefault(token, deque())
            cutoff = now - self.interval_ms / 1000.0
            while dq and dq[0] <= cutoff:
                dq.popleft()
            if self.daily_used >= self.daily_limit or now < self.daily_spell_until:
                self.rate_limited["DAILY"] += 1
                return "DAILY", self._headers(len(dq))
            if len(dq) >= self.rate_limit_max:
                self.rate_limited["TEN_SECONDLY_ROLLING"] += 1
                return "TEN_SECONDLY_ROLLING", self._headers(len(dq))
            dq.append(now)
            self.daily_used += 1
            if len(dq) > self.max_admitted_in_window:
                self.max_admitted_in_window = len(dq)
            return None, self._headers(len(dq))

    # ----------------------------------------------------------------- faults
    def fault_snapshot(self) -> dict[str, Any]:
        with self.lock:
            return dict(self.faults)

    def latency_s(self) -> float:
        with self.lock:
            fixed = self.faults["latency_ms"]
            jitter = self.faults["latency_jitter_ms"]
            extra = self.latency_rng.uniform(0.0, jitter) if jitter > 0 else 0.0
        return (fixed + extra) / 1000.0

    def next_read_outcome(self) -> str:
        """The forced outcome of one batch/read ("ok" when none is scripted)."""
        with self.lock:
            script = self.faults["read_script"]
            if not script:
                return "ok"
            self.faults["read_script"] = script[1:]
            return script[0]

    def next_outcome(self) -> tuple[str, dict[str, Any]]:
        """The fault outcome for one create request ("ok" when none), plus the faults in force.
        A script entry wins; otherwise exactly one draw from the seeded generator."""
        with self.lock:
            faults = dict(self.faults)
            script = self.faults["script"]
            if script:
                outcome = script[0]
                self.faults["script"] = script[1:]
                return outcome, faults
            draw = self.fault_rng.random()
            acc = 0.0
            for outcome, key in FAULT_ORDER:
                acc += faults[key]
                if draw < acc:
                    return outcome, faults
            return "ok", faults

    def start_daily_spell(self) -> None:
        """A daily-limit spell (fault): every request answers 429 DAILY for daily_spell_s from now."""
        with self.lock:
            self.daily_spell_until = time.monotonic() + self.faults["daily_spell_s"]
            self.rate_limited["DAILY"] += 1

    def shuffled(self, items: list[Any]) -> list[Any]:
        items = list(items)
        with self.lock:
            self.shuffle_rng.shuffle(items)
        return items

    # ----------------------------------------------------------------- payments
    def store(
        self, valid: list[tuple[int, dict[str, Any]]], *, all_or_nothing: bool
    ) -> tuple[list[dict[str, Any]], dict[int, tuple[str, str, str | None]]]:
        """Store the valid inputs (index, input) atomically with the unique-value check.

        Returns (stored payment records, conflicts: input index -> (property, value, existing id or None)).
        With ``all_or_nothing`` any conflict stores nothing. Every unique-value property is checked."""
        with self.lock:
            conflicts: dict[int, tuple[str, str, str | None]] = {}
            first_in_batch: dict[tuple[str, str], int] = {}
            for idx, item in valid:
                pairs = [(n, item["properties"][n]) for n in self.unique_names if item["properties"].get(n)]
                for name, value in pairs:
                    if value in self.by_unique[name]:
                        conflicts[idx] = (name, value, self.by_unique[name][value])
                        break
                    if (name, value) in first_in_batch:
                        conflicts[idx] = (name, value, None)  # filled in below with the first one's id
                        break
                else:
                    first_in_batch.update({pair: idx for pair in pairs})
            if conflicts and all_or_nothing:
                return [], conflicts
            stamp = iso_now()
            stored: list[dict[str, Any]] = []
            id_of_index: dict[int, str] = {}
            for idx, item in valid:
                if idx in conflicts:
                    continue
                record = self._store_new(
                    dict(item["properties"]),
                    item.get("associations") or [],
                    item.get("objectWriteTraceId"),
                    stamp,
                )
                id_of_index[idx] = record["id"]
                stored.append(record)
            for idx, (name, value, existing) in list(conflicts.items()):
                if existing is None:
                    conflicts[idx] = (name, value, id_of_index.get(first_in_batch[(name, value)]))
            return stored, conflicts

    def upsert(
        self, valid: list[tuple[int, dict[str, Any]]], *, all_or_nothing: bool
    ) -> tuple[list[tuple[int, dict[str, Any], bool]], dict[int, list[dict[str, str]]]]:
        """Create or update by the unique property (each input's ``id``), atomically.

        Returns ([(input index, record, new)], problems: input index -> problems of inputs that would create a payment
        without its required properties). With ``all_or_nothing`` any problem writes nothing."""
        from .schema import missing_required

        with self.lock:
            problems: dict[int, list[dict[str, str]]] = {}
            for idx, item in valid:
                if item["id"] not in self.by_unique.get(item["idProperty"], {}):
                    missing = missing_required({**item["properties"], item["idProperty"]: item["id"]})
                    if missing:
                        problems[idx] = missing
            if problems and all_or_nothing:
                return [], problems
            stamp = iso_now()
            out: list[tuple[int, dict[str, Any], bool]] = []
            for idx, item in valid:
                if idx in problems:
                    continue
                existing_id = self.by_unique.get(item["idProperty"], {}).get(item["id"])
                tid = item.get("objectWriteTraceId")
                if existing_id is not None:
                    record = self.by_id[existing_id]
                    record["properties"] = held(
                        {**record["properties"], **item["properties"], "hs_lastmodifieddate": stamp}
                    )
                    record["updatedAt"] = stamp
                    self.updates += 1
                    out.append((idx, dict(record), False))
                    continue
                record = self._store_new(
                    {**item["properties"], item["idProperty"]: item["id"]}, [], tid, stamp
                )
                out.append((idx, dict(record), True))
            return out, problems

    def _store_new(self, props: dict[str, Any], associations: list, tid: Any, stamp: str) -> dict[str, Any]:
        """Store one new payment with the next id and index it (caller holds the lock)."""
        props = held(props)
        pid = str(self.next_id)
        self.next_id += 1
        props.update({"hs_object_id": pid, "hs_createdate": stamp, "hs_lastmodifieddate": stamp})
        record = {
            "id": pid,
            "properties": props,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
            "associations": associations,
            "objectWriteTraceId": tid,
        }
        self.payments.append(record)
        self.by_id[pid] = record
        for name in self.unique_names:
            if props.get(name):
                self.by_unique[name][props[name]] = pid
        if isinstance(tid, str):
            ids = self.by_trace.setdefault(tid, [])
            ids.append(pid)
            if len(ids) == 2:
                self.traces_stored_more_than_once += 1
        return record

    def broken_rules(self, properties: dict[str, Any], record_id: str | None = None) -> list[dict[str, Any]]:
        """The account's write rules a write breaks: ``properties`` over the record's own."""
        with self.lock:
            held = self.by_id[record_id]["properties"] if record_id in self.by_id else {}
            merged = {**held, **properties}
            return [
                rule
                for rule in self.write_rules
                if all(merged.get(k) == v for k, v in rule["when"].items())
                and not merged.get(rule["property"])
            ]

    def existing_id(self, id_property: str, value: str) -> str | None:
        with self.lock:
            return self.by_unique.get(id_property, {}).get(value)

    def link(self, payment_id: str, to_type: str, to_id: str, types: list[dict[str, Any]]) -> bool:
        """Write a link from a stored payment (types merged into an existing link); False when the
        payment is not stored."""
        with self.lock:
            record = self.by_id.get(payment_id)
            if record is None:
                return False
            for existing in record["associations"]:
                if existing.get("toObjectType") == to_type and existing["to"]["id"] == to_id:
                    existing["types"] += [t for t in types if t not in existing["types"]]
                    return True
            record["associations"].append(
                {"to": {"id": to_id}, "toObjectType": to_type, "types": list(types)}
            )
            self.links_written += 1
            return True

    def page(self, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        with self.lock:
            chunk = self.payments[after : after + limit]
            nxt = after + limit if after + limit < len(self.payments) else None
            return chunk, nxt

    def get(self, pid: str) -> dict[str, Any] | None:
        with self.lock:
            return self.by_id.get(pid)

    def get_by_unique(self, prop: str, value: str) -> dict[str, Any] | None:
        with self.lock:
            pid = self.by_unique.get(prop, {}).get(value)
            return self.by_id.get(pid) if pid else None

    # ----------------------------------------------------------------- properties API
    def property_named(self, name: str) -> dict[str, Any] | None:
        """A custom property's definition, or a built-in one's, or None."""
        with self.lock:
            found = self.properties.get(name)
            return public(found) if found else built_in_definition(name)

    def create_property(self, definition: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """Define a custom property (already validated). Returns (definition, None) or (None, why not)."""
        with self.lock:
            name = definition["name"]
            if name in self.properties or built_in_definition(name) is not None:
                return None, "exists"
            if definition["groupName"] not in self.groups:
                return None, "no group"
            if definition["hasUniqueValue"] and len(self.unique_names) >= MAX_UNIQUE_PROPERTIES:
                return None, "too many unique"
            self.properties[name] = property_definition(
                name,
                definition["label"],
                definition["type"],
                definition["fieldType"],
                definition["groupName"],
                definition["hasUniqueValue"],
                "api",
                definition.get("description", ""),
            )
            self._refresh_known()
            return public(self.properties[name]), None

    def group(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.groups.get(name)
            return dict(found) if found else None

    def create_group(self, name: str, label: str, display_order: int) -> dict[str, Any] | None:
        """A new property group, or None when one of that name exists."""
        with self.lock:
            if name in self.groups:
                return None
            self.groups[name] = group_definition(name, label, display_order)
            return dict(self.groups[name])

    def all_payments(self, trace_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            if trace_id is not None:
                return [copy.deepcopy(self.by_id[p]) for p in self.by_trace.get(trace_id, [])]
            return copy.deepcopy(self.payments)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests_total": self.requests_total,
                "requests_by_status": dict(self.by_status),
                "requests_by_route": dict(self.by_route),
                "inputs_received": self.inputs_received,
                "payments_stored": len(self.payments),
                "payments_updated": self.updates,
                "associations_written": self.links_written,
                "max_requests_in_window": self.max_requests_in_window,
                "max_admitted_in_window": self.max_admitted_in_window,
                "window_ms": self.interval_ms,
                "rate_limited": dict(self.rate_limited),
                "daily_used": self.daily_used,
                "faults_injected": dict(self.faults_injected),
                "trace_ids_stored_more_than_once": self.traces_stored_more_than_once,
            }


def property_definition(
    name: str,
    label: str,
    type_: str,
    field_type: str,
    group: str,
    unique: bool,
    origin: str,
    description: str = "",
) -> dict[str, Any]:
    """A property as the properties API answers it (plus ``origin``: "config" or "api", not served)."""
    stamp = iso_now()
    return {
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type,
        "groupName": group,
        "description": description,
        "hasUniqueValue": unique,
        "hidden": False,
        "formField": False,
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "options": [],
        "createdAt": stamp,
        "updatedAt": stamp,
        "archived": False,
        "modificationMetadata": {"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False},
        "origin": origin,
    }


def public(definition: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in definition.items() if k != "origin"}


def group_definition(name: str, label: str, display_order: int = -1) -> dict[str, Any]:
    return {"name": name, "label": label, "displayOrder": display_order, "archived": False}
