"""The HTTP/1.1 server: HubSpot's commerce_payments routes plus the /_sandbox/ control routes."""

from __future__ import annotations

import json
import re
import socket
import struct
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Collection
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import schema
from .config import ALL_SCOPES, READ_SCOPE, SCHEMA_READ_SCOPE, SCHEMA_WRITE_SCOPE, WRITE_SCOPE, SandboxConfig
from .state import SandboxState, iso_now

_OBJ = r"/crm/(?:v3/objects|objects/2026-09)/(?:commerce_payments|0-101)"
CREATE_RE = re.compile(rf"^{_OBJ}/batch/create$")
UPSERT_RE = re.compile(rf"^{_OBJ}/batch/upsert$")
READ_RE = re.compile(rf"^{_OBJ}/batch/read$")
LIST_RE = re.compile(rf"^{_OBJ}/?$")
GET_RE = re.compile(rf"^{_OBJ}/([^/]+)$")
# A batch call to an object type HubSpot does not know: 400 "Unable to infer object type from: <type>".
# HubSpot's other object types (by name or type id) exist there but are not served here: 404.
ANY_BATCH_RE = re.compile(
    r"^/crm/(?:v3/objects|objects/2026-09)/([^/]+)/batch/(?:create|upsert|read|update|archive)$"
)
OTHER_OBJECT_TYPES = frozenset(
    {
        "contacts",
        "companies",
        "deals",
        "tickets",
        "products",
        "line_items",
        "quotes",
        "calls",
        "emails",
        "meetings",
        "notes",
        "tasks",
        "communications",
        "postal_mail",
        "invoices",
        "orders",
        "carts",
        "subscriptions",
        "discounts",
        "fees",
        "taxes",
        "goal_targets",
        "leads",
        "users",
        "appointments",
        "courses",
        "listings",
        "services",
    }
)
OBJECT_TYPE_ID = re.compile(r"^[0-9]+-[0-9]+$")
# The associations API's batch writes: the date-versioned path, and v4's (served while v3 is).
LINKS_RE = re.compile(
    r"^/crm/(?:associations/(?P<version>2026-09)|v4/associations)/(?P<from>[^/]+)/(?P<to>[^/]+)"
    r"/batch/(?P<kind>create|associate/default)$"
)
PAYMENT_TYPES = frozenset({"commerce_payments", "0-101"})
# The properties API on commerce_payments (v3 and the date-versioned path).
_PROPS = r"/crm/(?:v3/properties|properties/2026-03)/(?:commerce_payments|0-101)"
PROPERTIES_RE = re.compile(rf"^{_PROPS}/?$")
GROUPS_RE = re.compile(rf"^{_PROPS}/groups/?$")
GROUP_RE = re.compile(rf"^{_PROPS}/groups/([^/]+)$")
PROPERTY_RE = re.compile(rf"^{_PROPS}/([^/]+)$")
TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"

DEFAULT_LIST_PROPERTIES = ("hs_object_id", "hs_createdate", "hs_lastmodifieddate")
PROPERTY_CODES = frozenset(
    {
        "PROPERTY_DOESNT_EXIST",
        "READ_ONLY_VALUE",
        "INVALID_PROPERTY_VALUE_TYPE",
        "INVALID_STRING_LENGTH",
        "INVALID_DECIMAL",
        "INVALID_DATE",
        "INVALID_OPTION",
        "MISSING_REQUIRED_PROPERTY",
    }
)
REASONS = {207: "Multi-Status", 423: "Locked", 429: "Too Many Requests", 477: "Migration In Progress"}


def _phrase(status: int) -> str:
    if status in REASONS:
        return REASONS[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _error(message: str, category: str, cid: str, **extra: Any) -> dict[str, Any]:
    body = {"status": "error", "message": message, "correlationId": cid, "category": category}
    body.update(extra)
    return body


def _sub_errors(problems: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [
        {
            "message": p["message"],
            "code": p["code"],
            "in": p["in"],
            "context": {"propertyName": [p["in"]]} if p["code"] in PROPERTY_CODES else {},
        }
        for p in problems
    ]


def _summary(problems: list[dict[str, str]]) -> str:
    legacy = [
        {"isValid": False, "message": p["message"], "error": p["code"], "name": p["in"]} for p in problems
    ]
    prefix = (
        "Property values were not valid: "
        if all(p["code"] in PROPERTY_CODES for p in problems)
        else "Invalid input: "
    )
    return prefix + json.dumps(legacy)


class _Reset(Exception):
    """Raised inside a handler after the connection was reset on purpose."""


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: SandboxState, verbose: bool = False) -> None:
        self.state = state
        self.verbose = verbose
        self.stopping = threading.Event()
        super().__init__(address, SandboxHandler)


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HubSpotSandbox/1.0"
    timeout = 300  # idle keep-alive connections are closed after this many seconds
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.verbose:
            super().log_message(format, *args)

    # ------------------------------------------------------------------ plumbing
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        self.cid = str(uuid.uuid4())
        self.generation = self.server.state.generation
        self.rate: dict[str, str] = {}
        self.public = False
        self.arrived: float | None = None  # for the timeline: when the request was read
        self.admitted: float | None = None  # when it was counted against the rolling window
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        try:
            if path.startswith("/_sandbox/"):
                self._control(method, path, query, body)
            else:
                self._public(method, path, query, body)
        except _Reset:
            pass
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a sandbox bug: make it loud, and answer 500
            traceback.print_exc(file=sys.stderr)
            try:
                self._send(500, _error(f"sandbox internal error: {exc!r}", "INTERNAL_ERROR", self.cid))
            except OSError:
                self.close_connection = True

    def _send(
        self,
        status: int,
        payload: Any,
        extra_headers: dict[str, str] | None = None,
        *,
        truncate: str | None = None,
        trickle: tuple[int, float] | None = None,
    ) -> None:
        body = payload if isinstance(payload, bytes) else _dumps(payload)
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if self.public:
            headers.update(self.rate)
            headers["X-HubSpot-Correlation-Id"] = self.cid
        headers.update(extra_headers or {})
        sent = body
        length = len(body)
        if truncate is not None:
            sent = body[: max(1, len(body) // 2)]
            if truncate == "short_body":
                length = len(sent)
            else:
                self.close_connection = True
        if self.close_connection:
            headers["Connection"] = "close"
        else:
            headers["Connection"] = "keep-alive"
        headers["Content-Length"] = str(length)
        headers["Date"] = self.date_time_string()
        head = (
            f"HTTP/1.1 {status} {_phrase(status)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        )
        if self.public:
            self.server.state.note_status(str(status), self.generation, self._timing())
        self.log_request(status, len(sent))
        data = head.encode("latin-1") + sent
        if trickle is None:
            self.wfile.write(data)
            return
        size, interval = trickle  # fault "trickle": a piece at a time (BrokenPipe when the client gives up)
        for start in range(0, len(data), size):
            if self.server.stopping.is_set():
                self.close_connection = True
                return
            self.wfile.write(data[start : start + size])
            self.wfile.flush()
            self.server.stopping.wait(interval)

    def _hang(self, max_s: float) -> None:
        """Fault "hang": never answer; hold the connection until the client closes it (or max_s)."""
        self.server.state.note_status("hang", self.generation, self._timing())
        self.close_connection = True
        until = time.monotonic() + max_s
        self.connection.settimeout(0.2)
        while not self.server.stopping.is_set() and time.monotonic() < until:
            try:
                if not self.connection.recv(65536):
                    return  # the client closed its end
            except TimeoutError:
                continue
            except OSError:
                return

    def _reset_connection(self) -> None:
        self.server.state.note_status("reset", self.generation, self._timing())
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        for f in (self.wfile, self.rfile):
            try:
                f.close()
            except OSError:
                pass
        try:
            self.connection.close()
        except OSError:
            pass
        raise _Reset()

    # ------------------------------------------------------------------ HubSpot routes
    def _authenticate(self, scope_options: tuple[str, ...]) -> str | None:
        """Returns the token, or answers 401/403 and returns None."""
        state = self.server.state
        auth = self.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        spec = state.token_spec(token) if token else None
        self.rate = state.rate_headers(token if spec else None)
        if spec is None:
            message = (
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
                if not token
                else "The OAuth token used to make this call is invalid or was revoked."
            )
            self._send(401, _error(message, "INVALID_AUTHENTICATION", self.cid))
            return None
        if spec["expired"]:
            self._send(
                401,
                _error(
                    "The OAuth token used to make this call expired 0 hour(s) ago.",
                    "EXPIRED_AUTHENTICATION",
                    self.cid,
                    context={"expire time": [iso_now()]},
                ),
            )
            return None
        if not any(s in spec["scopes"] for s in scope_options):
            self._send(
                403,
                _error(
                    "This app hasn't been granted all required scopes to make this call. Read more about required "
                    "scopes here: https://developers.hubspot.com/scopes.",
                    "MISSING_SCOPES",
                    self.cid,
                    errors=[
                        {
                            "message": "One or more of the following scopes are required.",
                            "context": {"requiredGranularScopes": [scope_options[0]]},
                        }
                    ],
                    links={"scopes": "https://developers.hubspot.com/scopes"},
                ),
            )
            return None
        return token

    def _timing(self) -> dict[str, Any]:
        remaining = self.rate.get("X-HubSpot-RateLimit-Remaining")
        return {
            "arrived": self.arrived,
            "admitted": self.admitted,
            "remaining": int(remaining) if remaining is not None else None,
        }

    def _admit(self, token: str) -> bool:
        policy, self.rate = self.server.state.admit(token)
        if policy is None:
            self.admitted = time.monotonic()
            return True
        self._send_429(policy)
        return False

    def _send_429(self, policy: str) -> None:
        name = "ten_secondly_rolling" if policy == "TEN_SECONDLY_ROLLING" else "daily"
        self._send(
            429,
            {
                "status": "error",
                "message": f"You have reached your {name} limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": self.cid,
                "policyName": policy,
                "groupName": "sandbox:commerce_payments",
            },
        )

    def _public(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        state = self.server.state
        self.public = True
        if CREATE_RE.match(path):
            route = "create"
        elif UPSERT_RE.match(path):
            route = "upsert"
        elif READ_RE.match(path):
            route = "read"
        elif (match := ANY_BATCH_RE.match(path)) and not (
            match.group(1) in OTHER_OBJECT_TYPES or OBJECT_TYPE_ID.match(match.group(1))
        ):
            route = "unknown_object_type"
        elif LIST_RE.match(path):
            route = "list"
        elif GET_RE.match(path):
            route = "get"
        elif (
            PROPERTIES_RE.match(path)
            or GROUPS_RE.match(path)
            or GROUP_RE.match(path)
            or PROPERTY_RE.match(path)
        ):
            route = "properties"
        elif path == TOKEN_INFO_PATH:
            route = "token_info"
        elif LINKS_RE.match(path):
            route = "associations"
        else:
            route = "other"
        self.arrived = time.monotonic()
        state.note_request(route)
        latency = state.latency_s()
        if latency > 0:
            time.sleep(latency)
        if route in ("create", "upsert") and method == "POST":
            self._write(body, route, dated=path.startswith("/crm/objects/"))
        elif route == "read" and method == "POST":
            if (token := self._authenticate((READ_SCOPE, WRITE_SCOPE))) and self._admit(token):
                self._read(body)
        elif route == "associations" and method == "POST":
            self._links(body, LINKS_RE.match(path))  # type: ignore[arg-type]
        elif route == "unknown_object_type" and method == "POST":
            if (token := self._authenticate(ALL_SCOPES)) and self._admit(token):
                kind = ANY_BATCH_RE.match(path).group(1)  # type: ignore[union-attr]
                self._send(
                    400, _error(f"Unable to infer object type from: {kind}", "VALIDATION_ERROR", self.cid)
                )
        elif route == "properties":
            self._properties(method, path, body)
        elif route == "token_info" and method == "POST":
            self._token_info(body)
        elif route == "list" and method == "GET":
            if (token := self._authenticate((READ_SCOPE, WRITE_SCOPE))) and self._admit(token):
                self._list(query)
        elif route == "get" and method == "GET":
            if (token := self._authenticate((READ_SCOPE, WRITE_SCOPE))) and self._admit(token):
                self._get(GET_RE.match(path).group(1), query)  # type: ignore[union-attr]
        elif route != "other":
            self._send(405, _error(f"Method {method} not allowed on {path}", "METHOD_NOT_ALLOWED", self.cid))
        else:
            self._send(
                404, _error(f"Unable to route {method} request to {path}", "OBJECT_NOT_FOUND", self.cid)
            )

    def _write(self, body: bytes, route: str, *, dated: bool = False) -> None:
        admitted = self._admitted_inputs(body)
        if admitted is None:
            return
        inputs, outcome, faults = admitted
        if dated and isinstance(inputs, list) and 0 < len(inputs) <= schema.MAX_INPUTS:
            if self._rules_broken(inputs, route):
                return
        status, payload = self._create_batch(inputs) if route == "create" else self._upsert_batch(inputs)
        if status == 207 and (dated or outcome == "2xx_with_errors"):
            # The date version declares one success status, errors included (docs/hubspot.md).
            status = 201 if route == "create" else 200
        self._post_store_reply(status, payload, outcome, faults)

    def _admitted_inputs(self, body: bytes) -> tuple[list[Any], str, dict[str, Any]] | None:
        """A batch write's inputs once authenticated, admitted, past any fault before storing and
        well formed (an input list of 1 to 100); None when it has been answered already."""
        state = self.server.state
        parsed: Any = None
        parse_error: str | None = None
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError as exc:
            parse_error = f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}"
        except ValueError as exc:
            parse_error = f"Invalid input JSON: {exc}"
        inputs = parsed.get("inputs") if isinstance(parsed, dict) else None
        if isinstance(inputs, list):
            state.note_inputs(len(inputs))

        token = self._authenticate((WRITE_SCOPE,))
        if token is None or not self._admit(token):
            return None
        outcome, faults = state.next_outcome()
        if outcome != "ok":
            state.note_fault(outcome)
        if faults["outage"]:
            state.note_fault("outage")
            self._send(503, _error("Service Unavailable (sandbox outage)", "SERVICE_UNAVAILABLE", self.cid))
            return None
        if self._pre_store_fault(outcome, faults):
            return None

        ctype = self.headers.get("Content-Type")
        if ctype is not None and ctype.split(";")[0].strip().lower() != "application/json":
            self._send(415, _error(f"Unsupported media type {ctype}", "VALIDATION_ERROR", self.cid))
            return
        if parse_error is not None:
            self._send(400, _error(parse_error, "VALIDATION_ERROR", self.cid))
            return
        if not isinstance(inputs, list):
            self._send(
                400,
                _error(
                    "Invalid input JSON: the body must be an object with an inputs list",
                    "VALIDATION_ERROR",
                    self.cid,
                ),
            )
            return
        if not inputs:
            self._send(
                400,
                _error("Invalid input: inputs must contain at least one input", "VALIDATION_ERROR", self.cid),
            )
            return
        if len(inputs) > schema.MAX_INPUTS:
            self._send(
                400,
                _error(
                    f"Batch input limit exceeded: {len(inputs)} inputs received, at most {schema.MAX_INPUTS} allowed",
                    "VALIDATION_ERROR",
                    self.cid,
                    errors=[
                        {
                            "message": "Too many inputs",
                            "code": "TOO_MANY_INPUTS",
                            "in": "inputs",
                            "context": {},
                        }
                    ],
                ),
            )
            return None
        return inputs, outcome, faults

    def _rules_broken(self, inputs: list[Any], route: str) -> bool:
        """The account's write rules (date versions only): a write that breaks one is answered 400
        VALIDATION_ERROR naming each such input by its trace id, and nothing is written."""
        state = self.server.state
        errors = []
        for item in inputs:
            if not isinstance(item, dict) or not isinstance(item.get("properties"), dict):
                continue
            existing = None
            if route == "upsert" and isinstance(item.get("id"), str):
                existing = state.existing_id(str(item.get("idProperty")), item["id"])
            for rule in state.broken_rules(schema.stored_properties(item["properties"]), existing):
                when = " and ".join(f"{k} is {v}" for k, v in rule["when"].items())
                errors.append(
                    {
                        "message": f"{rule['property']} is required when {when} (a rule of this account)",
                        "code": "CONDITIONAL_REQUIRED_PROPERTY",
                        "in": rule["property"],
                        "context": {
                            "objectWriteTraceId": [item.get("objectWriteTraceId")],
                            "propertyName": [rule["property"]],
                        },
                    }
                )
        if not errors:
            return False
        self._send(
            400,
            _error(
                "Some inputs break the account's rules for writing records",
                "VALIDATION_ERROR",
                self.cid,
                errors=errors,
                context={},
                links={},
            ),
        )
        return True

    def _links(self, body: bytes, match: re.Match[str]) -> None:
        """The associations API's batch create (typed) and associate/default, from payments."""
        state = self.server.state
        admitted = self._admitted_inputs(body)
        if admitted is None:
            return
        inputs, outcome, faults = admitted
        from_type, to_type, kind = match["from"], match["to"], match["kind"]
        if from_type not in PAYMENT_TYPES or to_type not in schema.PAYMENT_DEFAULT_TYPES:
            kind_ = to_type if from_type in PAYMENT_TYPES else from_type
            self._send(
                400, _error(f"Unable to infer object type from: {kind_}", "VALIDATION_ERROR", self.cid)
            )
            return
        default = {
            "associationCategory": "HUBSPOT_DEFINED",
            "associationTypeId": schema.PAYMENT_DEFAULT_TYPES[to_type],
        }
        results, errors = [], []
        for item in inputs:
            from_id = str((item.get("from") or {}).get("id")) if isinstance(item, dict) else "None"
            to_id = str((item.get("to") or {}).get("id")) if isinstance(item, dict) else "None"
            types = (
                [default]
                if kind == "associate/default"
                else (item.get("types") if isinstance(item, dict) else None)
            )
            error = self._link_error(from_id, to_type, to_id, types)
            if error is None and not state.link(from_id, to_type, to_id, types):
                error = self._invalid_ids("COMMERCE_PAYMENT", from_id)
            if error is not None:
                errors.append(error)
            elif kind == "associate/default":
                results.append({"from": {"id": from_id}, "to": {"id": to_id}, "associationSpec": default})
            else:
                results.append(
                    {
                        "fromObjectTypeId": "0-101",
                        "fromObjectId": from_id,
                        "toObjectTypeId": to_type,
                        "toObjectId": to_id,
                        "labels": [],
                    }
                )
        status = 200 if match["version"] or kind == "associate/default" else (207 if errors else 201)
        if status == 207 and outcome == "2xx_with_errors":
            status = 201
        self._post_store_reply(status, self._batch_body(iso_now(), results, errors), outcome, faults)

    def _link_error(self, from_id: str, to_type: str, to_id: str, types: Any) -> dict[str, Any] | None:
        state = self.server.state
        if not schema.is_numeric_id(from_id) or state.get(from_id) is None:
            return self._invalid_ids("COMMERCE_PAYMENT", from_id)
        if not schema.is_numeric_id(to_id) or to_id in state.missing_records.get(to_type, ()):
            return self._invalid_ids(
                "COMPANY" if to_type == "companies" else to_type.upper().removesuffix("S"), to_id
            )
        labels = state.association_labels.get(to_type, [])
        for spec in types if isinstance(types, list) and types else [None]:
            category = spec.get("associationCategory") if isinstance(spec, dict) else None
            type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
            valid = (category == "HUBSPOT_DEFINED" and type_id == schema.PAYMENT_DEFAULT_TYPES[to_type]) or (
                category in ("USER_DEFINED", "INTEGRATOR_DEFINED") and type_id in labels
            )
            if not valid:
                return {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "subCategory": "crm.associations.INVALID_ASSOCIATION_TYPE",
                    "message": f"association type {json.dumps(type_id)} ({category}) is not defined from "
                    f"commerce_payments to {to_type}",
                    "errors": [],
                    "context": {
                        "fromObjectId": [from_id],
                        "toObjectId": [to_id],
                        "associationTypeId": [str(type_id)],
                    },
                    "links": {},
                }
        return None

    @staticmethod
    def _invalid_ids(kind: str, object_id: str) -> dict[str, Any]:
        """HubSpot's refusal of a link to (or from) a record it does not hold."""
        return {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "subCategory": "crm.associations.INVALID_OBJECT_IDS",
            "message": "One or more associations are invalid",
            "errors": [],
            "context": {
                "INVALID_OBJECT_IDS": [f"{kind}={object_id} is not valid"],
                "objectId": [object_id],
                "objectType": [kind],
            },
            "links": {},
        }

    def _read(self, body: bytes) -> None:
        """batch/read by HubSpot id, or by a unique property's values (``idProperty``): 200 when every
        input was found, else 207 with one OBJECT_NOT_FOUND error naming the others in
        ``context.ids`` (docs/hubspot.md, "Batch read"). Forced faults: ``read_script``."""
        state = self.server.state
        outcome = state.next_read_outcome()
        if outcome != "ok":
            state.note_fault(f"read_{outcome}")
        if outcome == "reset":
            self._reset_connection()
        if outcome == "429":
            self.rate = dict(self.rate, **{"X-HubSpot-RateLimit-Remaining": "0"})
            self._send_429("TEN_SECONDLY_ROLLING")
            return
        if outcome in ("500", "502", "503", "504"):
            code = int(outcome)
            self._send(code, _error(_phrase(code), "INTERNAL_ERROR", self.cid))
            return
        data = self._json_body(body)
        if data is None:
            return
        if (refused := read_problem(data, state.unique_names, self.cid)) is not None:
            self._send(400, refused)
            return

        def find(id_property: str | None, value: str) -> dict[str, Any] | None:
            return state.get_by_unique(id_property, value) if id_property else state.get(value)

        self._send(*read_reply(data, find, state.shuffled, iso_now))

    def _pre_store_fault(self, outcome: str, faults: dict[str, Any]) -> bool:
        if outcome == "reset":
            self._reset_connection()
        if outcome == "hang":
            self._hang(faults["hang_max_s"])
        elif outcome == "daily_spell":
            self.server.state.start_daily_spell()
            self.rate = dict(self.rate, **{"X-HubSpot-RateLimit-Daily-Remaining": "0"})
            self._send_429("DAILY")
        elif outcome == "429":
            self.rate = dict(self.rate, **{"X-HubSpot-RateLimit-Remaining": "0"})
            self._send_429("TEN_SECONDLY_ROLLING")
        elif outcome == "423":
            self._send(
                423,
                _error("The resource is locked; try again in a few seconds.", "LOCKED", self.cid),
                {"Retry-After": str(faults["retry_after_s"])},
            )
        elif outcome == "477":
            self._send(
                477,
                _error(
                    "Migration in progress: this account is being migrated.",
                    "MIGRATION_IN_PROGRESS",
                    self.cid,
                ),
                {"Retry-After": str(faults["retry_after_s"])},
            )
        elif outcome in ("500", "502", "503", "504"):
            code = int(outcome)
            if faults["html_5xx"] and code != 500:
                page = f"<html><head><title>{code} {_phrase(code)}</title></head><body><h1>{_phrase(code)}</h1></body></html>"
                self._send(code, page.encode(), {"Content-Type": "text/html; charset=UTF-8"})
            else:
                category = {
                    500: "INTERNAL_ERROR",
                    502: "BAD_GATEWAY",
                    503: "SERVICE_UNAVAILABLE",
                    504: "GATEWAY_TIMEOUT",
                }
                self._send(code, _error(_phrase(code), category[code], self.cid))
        else:
            return False
        return True

    def _post_store_reply(
        self, status: int, payload: dict[str, Any], outcome: str, faults: dict[str, Any]
    ) -> None:
        stored = status in (200, 201, 207)
        if stored and outcome == "reset_after_store":
            self._reset_connection()
        if stored and outcome == "stored_then_timeout":
            self.server.stopping.wait(faults["stored_then_timeout_delay_s"])
            self.close_connection = True
        if stored and outcome == "stored_then_error":
            code = faults["stored_then_error_status"]
            self._send(code, _error(_phrase(code), "INTERNAL_ERROR", self.cid))
            return
        if stored and outcome == "stored_then_unreadable":
            page = f"<html><body><h1>{status} {_phrase(status)}</h1></body></html>".encode()
            self._send(status, page, {"Content-Type": "text/html; charset=UTF-8"})
            return
        truncate = faults["truncate_mode"] if outcome == "truncated" else None
        trickle = (faults["trickle_bytes"], faults["trickle_interval_s"]) if outcome == "trickle" else None
        self._send(status, payload, truncate=truncate, trickle=trickle)

    @staticmethod
    def _trace_ids(inputs: list[Any], problems: list[list[dict[str, str]]]) -> tuple[list[Any], bool]:
        """The inputs' trace ids, flagging duplicates as problems; and whether the request is multi-status
        (every input carries a unique objectWriteTraceId)."""
        trace_ids = [item.get("objectWriteTraceId") if isinstance(item, dict) else None for item in inputs]
        seen: dict[str, int] = {}
        for tid in trace_ids:
            if isinstance(tid, str) and tid:
                seen[tid] = seen.get(tid, 0) + 1
        for i, tid in enumerate(trace_ids):
            if isinstance(tid, str) and seen.get(tid, 0) > 1:
                problems[i].append(
                    schema.problem(
                        "DUPLICATE_OBJECT_WRITE_TRACE_ID",
                        f"objectWriteTraceId {tid!r} is used by more than one input in this request",
                        "objectWriteTraceId",
                    )
                )
        multi_status = all(isinstance(t, str) and t and seen[t] == 1 for t in trace_ids)
        return trace_ids, multi_status

    def _invalid_request(self, problems: list[list[dict[str, str]]]) -> tuple[int, dict[str, Any]]:
        flat = [p for ps in problems for p in ps]
        return 400, _error(
            _summary(flat), "VALIDATION_ERROR", self.cid, errors=_sub_errors(flat), context={}, links={}
        )

    @staticmethod
    def _error_item(problems: list[dict[str, str]], trace_id: str) -> dict[str, Any]:
        return {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": _summary(problems),
            "errors": _sub_errors(problems),
            "context": {"objectWriteTraceId": [trace_id]},
            "links": {},
        }

    @staticmethod
    def _result(record: dict[str, Any], trace_id: Any, echo: bool) -> dict[str, Any]:
        result = {
            "id": record["id"],
            "properties": dict(record["properties"]),
            "createdAt": record["createdAt"],
            "updatedAt": record["updatedAt"],
            "archived": False,
        }
        if echo and trace_id is not None:
            result["objectWriteTraceId"] = trace_id
        return result

    def _batch_body(
        self, started: str, results: list[dict[str, Any]], errors: list[dict[str, Any]]
    ) -> dict[str, Any]:
        state = self.server.state
        body: dict[str, Any] = {"status": "COMPLETE", "results": state.shuffled(results)}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = state.shuffled(errors)
        body["startedAt"] = started
        body["completedAt"] = iso_now()
        return body

    def _create_batch(self, inputs: list[Any]) -> tuple[int, dict[str, Any]]:
        state = self.server.state
        started = iso_now()
        extra = state.known_extra
        problems = [schema.validate_input(item, extra) for item in inputs]
        trace_ids, multi_status = self._trace_ids(inputs, problems)
        if not multi_status and any(problems):
            return self._invalid_request(problems)

        valid = [
            (i, {**item, "properties": schema.stored_properties(item.get("properties") or {})})
            for i, item in enumerate(inputs)
            if not problems[i]
        ]
        stored, conflicts = state.store(valid, all_or_nothing=not multi_status)
        if conflicts and not multi_status:
            existing = [e for _, _, e in conflicts.values() if e]
            idx, (unique, value, first) = next(iter(sorted(conflicts.items())))
            if first:
                message = f'A payment with {unique} "{value}" already exists. Existing ID: {first}'
            else:
                message = f'{unique} "{value}" appears more than once in this request; it must be unique'
            sub = [
                {
                    "message": f'{n} "{v}" already exists'
                    + (f". Existing ID: {e}" if e else " in this request"),
                    "code": "DUPLICATE_UNIQUE_VALUE",
                    "in": n,
                    "context": {"propertyName": [n], **({"existingId": [e]} if e else {})},
                }
                for _, (n, v, e) in sorted(conflicts.items())
            ]
            return 409, _error(
                message,
                "CONFLICT",
                self.cid,
                errors=sub,
                context={"existingId": sorted(set(existing)), "propertyName": [unique]},
                links={},
            )

        echo = state.echo_trace_id
        results = [self._result(record, record["objectWriteTraceId"], echo) for record in stored]
        errors = [self._error_item(ps, trace_ids[i]) for i, ps in enumerate(problems) if ps]
        for i, (unique, value, existing) in sorted(conflicts.items()):
            errors.append(conflict_item(unique, value, existing, trace_ids[i]))
        return (207 if errors else 201), self._batch_body(started, results, errors)

    def _upsert_batch(self, inputs: list[Any]) -> tuple[int, dict[str, Any]]:
        state = self.server.state
        started = iso_now()
        problems = [schema.validate_input(item, state.known_extra, upsert=True) for item in inputs]
        for i, item in enumerate(inputs):
            if isinstance(item, dict) and item.get("idProperty") not in state.unique_names:
                problems[i].append(
                    schema.problem(
                        "INVALID_ID_PROPERTY",
                        f"idProperty {json.dumps(item.get('idProperty'))} is not a unique-value property of "
                        "commerce_payments",
                        "idProperty",
                    )
                )
        ids = [
            item.get("id") for item in inputs if isinstance(item, dict) and isinstance(item.get("id"), str)
        ]
        counts: dict[str, int] = {}
        for value in ids:
            counts[value] = counts.get(value, 0) + 1
        dups = sorted(v for v, n in counts.items() if n > 1)
        if dups:
            return 400, _error(
                f"Duplicate IDs found in batch input: {dups}. IDs must be unique",
                "VALIDATION_ERROR",
                self.cid,
                errors=[
                    {
                        "message": f"Duplicate id {v}",
                        "code": "DUPLICATE_ID",
                        "in": "id",
                        "context": {"id": [v]},
                    }
                    for v in dups
                ],
                context={},
                links={},
            )
        trace_ids, multi_status = self._trace_ids(inputs, problems)
        if not multi_status and any(problems):
            return self._invalid_request(problems)
        valid = [
            (
                i,
                {
                    "id": item["id"],
                    "idProperty": item["idProperty"],
                    "properties": {
                        k: v
                        for k, v in schema.stored_properties(item.get("properties") or {}).items()
                        if k != item["idProperty"]
                    },
                    "objectWriteTraceId": item.get("objectWriteTraceId"),
                },
            )
            for i, item in enumerate(inputs)
            if not problems[i]
        ]
        written, missing = state.upsert(valid, all_or_nothing=not multi_status)
        for idx, ps in missing.items():
            problems[idx] += ps
        if missing and not multi_status:
            return self._invalid_request(problems)
        echo = state.echo_trace_id
        results = []
        for idx, record, new in written:
            result = self._result(record, trace_ids[idx], echo)
            result["new"] = new
            results.append(result)
        errors = [self._error_item(ps, trace_ids[i]) for i, ps in enumerate(problems) if ps]
        return (207 if errors else 200), self._batch_body(started, results, errors)

    # ------------------------------------------------------------------ properties API and token info
    def _properties(self, method: str, path: str, body: bytes) -> None:
        """Property definitions and groups of commerce_payments: read (GET) and create (POST)."""
        state = self.server.state
        write = method == "POST"
        if method not in ("GET", "POST"):
            self._send(405, _error(f"Method {method} not allowed on {path}", "METHOD_NOT_ALLOWED", self.cid))
            return
        scopes = (SCHEMA_WRITE_SCOPE,) if write else (SCHEMA_READ_SCOPE, SCHEMA_WRITE_SCOPE)
        token = self._authenticate(scopes)
        if token is None or not self._admit(token):
            return
        if (match := GROUP_RE.match(path)) and not write:
            found = state.group(match.group(1))
            if found is None:
                self._send(
                    404,
                    _error(f"Unable to find property group {match.group(1)}", "OBJECT_NOT_FOUND", self.cid),
                )
            else:
                self._send(200, found)
        elif GROUPS_RE.match(path) and write:
            self._create_group(body)
        elif (match := PROPERTY_RE.match(path)) and not write and not GROUPS_RE.match(path):
            found = state.property_named(match.group(1))
            if found is None:
                self._send(
                    404, _error(f"Unable to find property {match.group(1)}", "OBJECT_NOT_FOUND", self.cid)
                )
            else:
                self._send(200, found)
        elif PROPERTIES_RE.match(path) and write:
            self._create_property(body)
        else:
            self._send(405, _error(f"Method {method} not allowed on {path}", "METHOD_NOT_ALLOWED", self.cid))

    def _json_body(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except ValueError:
            self._send(400, _error("Invalid input JSON", "VALIDATION_ERROR", self.cid))
            return None

    def _create_group(self, body: bytes) -> None:
        data = self._json_body(body)
        if data is None:
            return
        name, label = (data.get("name"), data.get("label")) if isinstance(data, dict) else (None, None)
        if (
            not isinstance(name, str)
            or not schema.PROPERTY_NAME.match(name)
            or not isinstance(label, str)
            or not label
        ):
            self._send(
                400,
                _error(
                    "name (lower case, digits, underscores) and label are required",
                    "VALIDATION_ERROR",
                    self.cid,
                ),
            )
            return
        order = data.get("displayOrder", -1)
        created = self.server.state.create_group(name, label, order if isinstance(order, int) else -1)
        if created is None:
            self._send(409, _error(f"A property group named {name} already exists.", "CONFLICT", self.cid))
        else:
            self._send(201, created)

    def _create_property(self, body: bytes) -> None:
        data = self._json_body(body)
        if data is None:
            return
        problems = schema.validate_property_create(data)
        if problems:
            self._send(
                400, _error(_summary(problems), "VALIDATION_ERROR", self.cid, errors=_sub_errors(problems))
            )
            return
        created, why = self.server.state.create_property(data)
        name = data["name"]
        if why == "exists":
            self._send(409, _error(f"A property named {name} already exists.", "CONFLICT", self.cid))
        elif why == "no group":
            self._send(
                400,
                _error(f"Property group {data['groupName']} does not exist.", "VALIDATION_ERROR", self.cid),
            )
        elif why == "too many unique":
            self._send(
                400,
                _error(
                    "commerce_payments already has the most unique value properties an object can have (10)",
                    "VALIDATION_ERROR",
                    self.cid,
                ),
            )
        else:
            self._send(201, created)

    def _token_info(self, body: bytes) -> None:
        """HubSpot's private-app token introspection: POST {"tokenKey": token} -> its scopes."""
        data = self._json_body(body)
        if data is None:
            return
        key = data.get("tokenKey") if isinstance(data, dict) else None
        spec = self.server.state.token_spec(key) if isinstance(key, str) and key else None
        if spec is None or not spec.get("private_app", True):
            self._send(
                400,
                _error("The token is not a valid private app access token.", "VALIDATION_ERROR", self.cid),
            )
            return
        self._send(200, {"userId": 1, "hubId": 1, "appId": 1, "scopes": sorted(spec["scopes"])})

    @staticmethod
    def _view(record: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
        names = wanted if wanted is not None else DEFAULT_LIST_PROPERTIES
        props = record["properties"]
        return {
            "id": record["id"],
            "properties": {n: props.get(n) for n in names if n in props or n in DEFAULT_LIST_PROPERTIES},
            "createdAt": record["createdAt"],
            "updatedAt": record["updatedAt"],
            "archived": False,
        }

    @staticmethod
    def _wanted(query: dict[str, list[str]]) -> list[str] | None:
        if "properties" not in query:
            return None
        names = [n.strip() for v in query["properties"] for n in v.split(",") if n.strip()]
        return list(DEFAULT_LIST_PROPERTIES) + [n for n in names if n not in DEFAULT_LIST_PROPERTIES]

    def _list(self, query: dict[str, list[str]]) -> None:
        try:
            limit = int(query.get("limit", ["10"])[0])
            after = int(query.get("after", ["0"])[0] or 0)
            if limit < 1 or after < 0:
                raise ValueError
        except ValueError:
            self._send(
                400,
                _error(
                    "limit must be a positive integer and after a valid cursor", "VALIDATION_ERROR", self.cid
                ),
            )
            return
        limit = min(limit, 100)
        chunk, nxt = self.server.state.page(after, limit)
        wanted = self._wanted(query)
        body: dict[str, Any] = {"results": [self._view(r, wanted) for r in chunk]}
        if nxt is not None:
            body["paging"] = {"next": {"after": str(nxt), "link": f"?after={nxt}&limit={limit}"}}
        self._send(200, body)

    def _get(self, pid: str, query: dict[str, list[str]]) -> None:
        state = self.server.state
        id_property = query.get("idProperty", [None])[0]
        record = (
            state.get_by_unique(id_property, pid)
            if id_property and id_property != "hs_object_id"
            else state.get(pid)
        )
        if record is None:
            self._send(404, _error("resource not found", "OBJECT_NOT_FOUND", self.cid))
            return
        self._send(200, self._view(record, self._wanted(query)))

    # ------------------------------------------------------------------ control routes
    def _control(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        state = self.server.state
        try:
            data = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as exc:
            self._send(400, {"error": f"bad JSON body: {exc}"})
            return
        route = (method, path.rstrip("/"))
        try:
            if route == ("GET", "/_sandbox/health"):
                self._send(200, {"ok": True})
            elif route == ("GET", "/_sandbox/stats"):
                self._send(200, state.stats())
            elif route == ("GET", "/_sandbox/timeline"):
                self._send(200, state.timeline_dict())
            elif route == ("POST", "/_sandbox/reset"):
                state.reset(restore_config=bool(data.get("restore_config", False)))
                self._send(200, {"reset": True, "config": state.config_dict()})
            elif route == ("GET", "/_sandbox/config"):
                self._send(200, state.config_dict())
            elif route in (("POST", "/_sandbox/config"), ("PATCH", "/_sandbox/config")):
                self._send(200, state.update_config(data))
            elif route == ("GET", "/_sandbox/faults"):
                self._send(200, state.fault_snapshot())
            elif route in (("POST", "/_sandbox/faults"), ("PATCH", "/_sandbox/faults")):
                self._send(200, state.set_faults(data))
            elif route == ("PUT", "/_sandbox/faults"):
                self._send(200, state.set_faults(data, clear=True))
            elif route == ("DELETE", "/_sandbox/faults"):
                self._send(200, state.set_faults({}, clear=True))
            elif route == ("GET", "/_sandbox/payments"):
                trace = query.get("objectWriteTraceId", [None])[0]
                results = state.all_payments(trace)
                self._send(200, {"results": results, "total": len(results)})
            else:
                self._send(404, {"error": f"no control route {method} {path}"})
        except (ValueError, TypeError) as exc:
            self._send(400, {"error": str(exc)})


class SandboxServer:
    """The sandbox in this process (threads). ``run_sandbox`` runs it in a subprocess instead."""

    def __init__(self, config: SandboxConfig | None = None, *, port: int = 0, verbose: bool = False) -> None:
        self.config = config or SandboxConfig()
        self.state = SandboxState(self.config)
        self.httpd = SandboxHTTPServer(("127.0.0.1", port), self.state, verbose=verbose)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> str:
        self._thread = threading.Thread(target=self.serve_forever, name="hubspot-sandbox", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        self.httpd.stopping.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_problem(data: Any, unique_names: Collection[str], cid: str) -> dict[str, Any] | None:
    """Why HubSpot refuses a batch/read request (the body of its 400), or None: the inputs must be
    1 to 100 ``{"id": string}``, and ``idProperty`` absent, ``hs_object_id`` or a unique-value
    property. Pure: the sandbox and the simulation (simulation/hubspot.py) answer with it."""
    inputs = data.get("inputs") if isinstance(data, dict) else None
    if not isinstance(inputs, list) or not all(
        isinstance(item, dict) and isinstance(item.get("id"), str) for item in inputs
    ):
        return _error('Invalid input JSON: inputs must be a list of {"id": string}', "VALIDATION_ERROR", cid)
    if not 1 <= len(inputs) <= schema.MAX_INPUTS:
        return _error(
            f"Batch input limit: {len(inputs)} inputs received, 1 to {schema.MAX_INPUTS} allowed",
            "VALIDATION_ERROR",
            cid,
        )
    id_property = read_id_property(data)
    if id_property is not None and id_property not in unique_names:
        return _error(
            f"idProperty {json.dumps(id_property)} is not a unique-value property of commerce_payments",
            "VALIDATION_ERROR",
            cid,
        )
    return None


def read_id_property(data: dict[str, Any]) -> Any:
    """The unique property a batch/read reads by, or None when it reads by HubSpot id."""
    id_property = data.get("idProperty")
    return None if id_property in (None, "", "hs_object_id") else id_property


def read_reply(
    data: dict[str, Any],
    find: Callable[[Any, str], dict[str, Any] | None],
    shuffled: Callable[[list[Any]], list[Any]],
    now: Callable[[], str],
) -> tuple[int, dict[str, Any]]:
    """HubSpot's answer to a batch/read that ``read_problem`` accepts: 200 when every input was found,
    else 207 with one OBJECT_NOT_FOUND error naming the others in ``context.ids`` (docs/hubspot.md,
    "Batch read"). ``find(id_property, value)``: the stored record, or None (``id_property`` None:
    by HubSpot id); ``shuffled``: results in no guaranteed order; ``now``: an ISO timestamp."""
    id_property = read_id_property(data)
    asked = list(dict.fromkeys(item["id"] for item in data["inputs"]))
    names = data.get("properties") if isinstance(data.get("properties"), list) else []
    wanted = list(DEFAULT_LIST_PROPERTIES) + [str(n) for n in names if n not in DEFAULT_LIST_PROPERTIES]
    results, missing = [], []
    for value in asked:
        record = find(id_property, value)
        if record is None:
            missing.append(value)
        else:
            results.append(SandboxHandler._view(record, wanted))
    started = now()
    reply: dict[str, Any] = {"status": "COMPLETE", "results": shuffled(results)}
    if missing:
        reply["numErrors"] = 1
        reply["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some COMMERCE_PAYMENT objects, they may be deleted or not exist. "
                "Check that ids are valid.",
                "context": {"ids": missing},
            }
        ]
    reply["startedAt"] = started
    reply["completedAt"] = now()
    return (207 if missing else 200), reply


def conflict_item(unique: str, value: str, existing: str, trace_id: Any) -> dict[str, Any]:
    """One input's error for a unique value already held (HubSpot's CONFLICT, in a 207's errors)."""
    return {
        "status": "error",
        "category": "CONFLICT",
        "message": f'A payment with {unique} "{value}" already exists. Existing ID: {existing}',
        "errors": [],
        "context": {"objectWriteTraceId": [trace_id], "existingId": [existing], "propertyName": [unique]},
        "links": {},
    }
