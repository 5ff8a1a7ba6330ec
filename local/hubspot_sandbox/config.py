"""Sandbox configuration: one JSON-serialisable dataclass, shared by the server, the CLI and the tests."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

WRITE_SCOPE = "crm.objects.commercepayments.write"
READ_SCOPE = "crm.objects.commercepayments.read"
# The properties API on commerce_payments (docs/hubspot.md): reading and creating property definitions.
SCHEMA_READ_SCOPE = "crm.schemas.commercepayments.read"
SCHEMA_WRITE_SCOPE = "crm.schemas.commercepayments.write"
ALL_SCOPES = (WRITE_SCOPE, READ_SCOPE, SCHEMA_READ_SCOPE, SCHEMA_WRITE_SCOPE)
DEFAULT_TOKEN = "sandbox-token"

#: Every fault option, with its default (no fault). Documented in docs/sandbox.md.
FAULT_DEFAULTS: dict[str, Any] = {
    # Added to every public API request (create, list, get); never to /_sandbox/.
    "latency_ms": 0.0,
    "latency_jitter_ms": 0.0,  # uniform 0..jitter, drawn from the seeded generator
    # Probabilities (0..1) per create/upsert request; nothing is stored when one of these fires.
    "p_429": 0.0,
    "p_423": 0.0,
    "p_477": 0.0,
    "p_500": 0.0,
    "p_502": 0.0,
    "p_503": 0.0,
    "p_504": 0.0,
    "p_reset": 0.0,  # connection reset (TCP RST) before replying
    # Probabilities per create/upsert request; the payments ARE stored, then the reply goes wrong.
    "p_reset_after_store": 0.0,
    "p_stored_then_timeout": 0.0,  # reply delayed by stored_then_timeout_delay_s
    "p_stored_then_error": 0.0,  # reply is stored_then_error_status instead of 201/207
    "p_truncated": 0.0,  # reply body cut in half (see truncate_mode)
    "p_trickle": 0.0,  # reply sent trickle_bytes at a time, one piece every trickle_interval_s
    "p_stored_then_unreadable": 0.0,  # the 2xx reply's body is an HTML page, not JSON
    # Per create/upsert request: a multi-status reply is sent with the success status (201 create,
    # 200 upsert) and its errors/numErrors, as HubSpot's 2026-09 create declares.
    "p_2xx_with_errors": 0.0,
    # Per create/upsert request; nothing is stored.
    "p_hang": 0.0,  # never answered: the connection is held until the client closes it (or hang_max_s)
    "p_daily_spell": 0.0,  # a daily-limit spell begins: 429 DAILY on every request for daily_spell_s
    # Parameters.
    "retry_after_s": 1,  # Retry-After on 477 (and on injected 423)
    "stored_then_timeout_delay_s": 30.0,
    "stored_then_error_status": 502,
    "truncate_mode": "short_body",  # "short_body": Content-Length matches the cut body; "close": it does not
    "trickle_interval_s": 0.2,
    "trickle_bytes": 1,
    "hang_max_s": 600.0,
    "daily_spell_s": 60.0,
    # Injected 502/503/504 answer an HTML page (as a CDN in front of HubSpot does) instead of JSON.
    "html_5xx": False,
    # Switches.
    "outage": False,  # every create/upsert answers 503 (after auth and rate limiting)
    # Forced outcomes for the next batch/read requests, one per request: "ok", "429", "500", "502",
    # "503", "504", "reset" (reads get no random faults).
    "read_script": [],
    # Forced outcomes for the next create/upsert requests, consumed one per request before any random draw:
    # "ok", "429", "423", "477", "500", "502", "503", "504", "reset", "reset_after_store",
    # "stored_then_timeout", "stored_then_error", "truncated", "trickle", "stored_then_unreadable",
    # "2xx_with_errors", "hang", "daily_spell".
    "script": [],
}

READ_SCRIPT_OUTCOMES = frozenset({"ok", "429", "500", "502", "503", "504", "reset"})
SCRIPT_OUTCOMES = frozenset(
    {
        "ok",
        "429",
        "423",
        "477",
        "500",
        "502",
        "503",
        "504",
        "reset",
        "reset_after_store",
        "stored_then_timeout",
        "stored_then_error",
        "truncated",
        "trickle",
        "stored_then_unreadable",
        "2xx_with_errors",
        "hang",
        "daily_spell",
    }
)


def default_tokens() -> dict[str, dict[str, Any]]:
    return {DEFAULT_TOKEN: {"scopes": list(ALL_SCOPES), "expired": False}}


def normalise_faults(faults: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``faults`` into ``base`` (defaults when None), validating names and values."""
    merged = dict(FAULT_DEFAULTS if base is None else base)
    for name, value in faults.items():
        if name not in FAULT_DEFAULTS:
            raise ValueError(f"unknown fault option {name!r}; known: {sorted(FAULT_DEFAULTS)}")
        if value is None:
            value = FAULT_DEFAULTS[name]
        if name.startswith("p_"):
            value = float(value)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        elif name in (
            "latency_ms",
            "latency_jitter_ms",
            "stored_then_timeout_delay_s",
            "trickle_interval_s",
            "hang_max_s",
            "daily_spell_s",
        ):
            value = float(value)
            if value < 0:
                raise ValueError(f"{name} must be >= 0")
        elif name in ("retry_after_s", "stored_then_error_status"):
            value = int(value)
        elif name == "trickle_bytes":
            value = int(value)
            if value < 1:
                raise ValueError("trickle_bytes must be >= 1")
        elif name == "truncate_mode":
            if value not in ("short_body", "close"):
                raise ValueError("truncate_mode must be 'short_body' or 'close'")
        elif name in ("outage", "html_5xx"):
            value = bool(value)
        elif name in ("script", "read_script"):
            value = [str(v) for v in value]
            known = SCRIPT_OUTCOMES if name == "script" else READ_SCRIPT_OUTCOMES
            bad = [v for v in value if v not in known]
            if bad:
                raise ValueError(f"unknown {name} outcomes {bad}; known: {sorted(known)}")
        merged[name] = value
    total = sum(v for k, v in merged.items() if k.startswith("p_"))
    if total > 1.0 + 1e-9:
        raise ValueError(f"fault probabilities add up to {total} > 1")
    return merged


#: What issued a token (docs/sandbox.md): HubSpot's private-app token-info route knows only a
#: legacy private app's; a service key or an OAuth token is authorised by its scopes all the same.
TOKEN_KINDS = ("private_app", "service_key", "oauth")


def normalise_missing(missing: dict[str, Any]) -> dict[str, list[str]]:
    return {str(kind): [str(i) for i in ids] for kind, ids in (missing or {}).items()}


def normalise_labels(labels: dict[str, Any]) -> dict[str, list[int]]:
    return {str(kind): [int(i) for i in ids] for kind, ids in (labels or {}).items()}


def normalise_rules(rules: list[Any]) -> list[dict[str, Any]]:
    out = []
    for rule in rules or []:
        if not isinstance(rule, dict) or not isinstance(rule.get("property"), str):
            raise ValueError('a write rule is {"property": "name", "when": {"other": "value"}}')
        when = rule.get("when") or {}
        if not isinstance(when, dict) or not when:
            raise ValueError("a write rule's when names at least one property and its value")
        out.append({"property": rule["property"], "when": {str(k): str(v) for k, v in when.items()}})
    return out


def normalise_tokens(tokens: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, spec in tokens.items():
        if spec is None:
            continue
        if isinstance(spec, (list, tuple)):
            spec = {"scopes": list(spec)}
        # "private_app": false (the older switch) is an OAuth token; "kind" names any of TOKEN_KINDS.
        kind = spec.get("kind") or ("private_app" if spec.get("private_app", True) else "oauth")
        if kind not in TOKEN_KINDS:
            raise ValueError(f"unknown token kind {kind!r}; known: {list(TOKEN_KINDS)}")
        out[str(name)] = {
            "scopes": [str(s) for s in spec.get("scopes", [])],
            "expired": bool(spec.get("expired", False)),
            "kind": kind,
            "private_app": kind == "private_app",  # the token-info route knows it
        }
    return out


@dataclass
class SandboxConfig:
    """Everything the sandbox can be started with. All fields can also be changed at run time
    through ``POST /_sandbox/config`` (``SandboxControl.set_config``)."""

    #: token -> {"scopes": [...], "expired": bool, "kind": "private_app" (default) | "service_key" | "oauth"}
    tokens: dict[str, dict[str, Any]] = field(default_factory=default_tokens)
    rate_limit_per_10s: int = 190
    #: length of the rolling window; HubSpot's is 10 000 ms. Shorten it only to test window roll-over.
    rate_limit_interval_ms: int = 10_000
    daily_limit: int = 1_000_000
    echo_trace_id: bool = True
    #: name of a custom property with hasUniqueValue=true (e.g. "payment_key"), or None: the account starts
    #: with it as if it had been created through the properties API (POST /crm/v3/properties/...)
    unique_property: str | None = None
    #: further custom (writable, free-text, not unique) property names the account starts with
    extra_properties: list[str] = field(default_factory=list)
    seed: int = 0
    #: see FAULT_DEFAULTS; unknown names are refused
    faults: dict[str, Any] = field(default_factory=dict)
    #: object type -> ids of records the account does not hold (a link to one is refused); every
    #: other numeric id of a known type is taken to exist (the sandbox holds payments only)
    missing_records: dict[str, list[str]] = field(default_factory=dict)
    #: object type -> the account's own (USER_DEFINED) association type ids from payments to it
    association_labels: dict[str, list[int]] = field(default_factory=dict)
    #: the account's admin-configured rules, enforced on date-versioned writes only (HubSpot from
    #: 2026-09): {"property": P, "when": {Q: V, ...}}: P is required when every Q has value V
    write_rules: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tokens = normalise_tokens(self.tokens)
        self.faults = {k: v for k, v in normalise_faults(self.faults).items() if v != FAULT_DEFAULTS[k]}
        self.rate_limit_per_10s = int(self.rate_limit_per_10s)
        self.rate_limit_interval_ms = int(self.rate_limit_interval_ms)
        self.daily_limit = int(self.daily_limit)
        self.seed = int(self.seed)
        self.extra_properties = [str(p) for p in self.extra_properties]
        self.missing_records = normalise_missing(self.missing_records)
        self.association_labels = normalise_labels(self.association_labels)
        self.write_rules = normalise_rules(self.write_rules)
        if self.rate_limit_per_10s < 0 or self.daily_limit < 0 or self.rate_limit_interval_ms <= 0:
            raise ValueError("rate limits must be >= 0 and the interval > 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown sandbox config keys {sorted(unknown)}; known: {sorted(names)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> SandboxConfig:
        return cls.from_dict(json.loads(text))
