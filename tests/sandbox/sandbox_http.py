"""A deliberately plain HTTP client for the sandbox contract tests (http.client, one connection per call)."""

from __future__ import annotations

import http.client
import itertools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

CREATE = "/crm/v3/objects/commerce_payments/batch/create"
LIST = "/crm/v3/objects/commerce_payments"
TOKEN = "sandbox-token"
RATE_HEADERS = (
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
)

_counter = itertools.count(1)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class Api:
    def __init__(self, base_url: str, token: str | None = TOKEN, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.token = token
        self.timeout = timeout

    def connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout)

    def headers(self, token: str | None | bool = True, content_type: str | None = "application/json") -> dict:
        token = self.token if token is True else token
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None | bool = True,
        raw: bytes | None = None,
        content_type: str | None = "application/json",
        timeout: float | None = None,
    ) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=data, headers=self.headers(token, content_type if data else None))
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def create(self, inputs: list[dict], path: str = CREATE, **kw: Any) -> Reply:
        return self.request("POST", path, {"inputs": inputs}, **kw)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)


def payment(trace: bool = True, **props: Any) -> dict:
    """A valid input (unique trace id unless trace=False); keyword args override properties
    (a value of None removes the property)."""
    n = next(_counter)
    properties = {
        "hs_initial_amount": f"{n}.50",
        "hs_initiated_date": "2026-11-27T10:00:00Z",
        "hs_currency_code": "EUR",
    }
    properties.update(props)
    properties = {k: v for k, v in properties.items() if v is not None}
    item: dict[str, Any] = {"properties": properties}
    if trace:
        item["objectWriteTraceId"] = f"t-{n}"
    return item


def batch(n: int, trace: bool = True, **props: Any) -> list[dict]:
    return [payment(trace, **props) for _ in range(n)]
