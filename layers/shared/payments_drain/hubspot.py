"""Adapter: HubSpot commerce_payments batch/create over urllib3.

One PoolManager per container, reused across invocations (connections stay warm), explicit
connect and read timeouts, TLS verified, no automatic retries: a POST that may have been stored
must not be resent blindly, so the orchestration decides (urllib3's Retry would either skip POST
or resend it without knowing that).
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, ReadTimeoutError

from payments_drain.batching import Answer
from payments_drain.observability import tracer

PATHS = {
    "v3": "/crm/v3/objects/commerce_payments/batch/create",
    "2026-09": "/crm/objects/2026-09/commerce_payments/batch/create",
}


def check_base_url(base_url: str) -> str:
    """``https`` is required, except to loopback (the local sandbox). Returns it without a trailing /."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("must use https (plain http is allowed only to a loopback address)")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return base_url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HubSpotClient:
    def __init__(
        self,
        base_url: str,
        api_version: str = "v3",
        connect_timeout_s: float = 3.05,
        read_timeout_s: float = 15.0,
        max_connections: int = 8,
    ) -> None:
        self.url = check_base_url(base_url) + PATHS[api_version]
        self.read_timeout_s = read_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=max_connections,
            block=False,
            cert_reqs="CERT_REQUIRED",
            retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
        )

    @tracer.capture_method(capture_response=False)
    def create_batch(self, inputs: Sequence[dict[str, Any]], token: str, time_left_s: float | None = None) -> Answer:
        """One POST. Never raises for HTTP or network trouble: it is in the Answer."""
        read = self.read_timeout_s if time_left_s is None else max(0.1, min(self.read_timeout_s, time_left_s))
        body = json.dumps({"inputs": list(inputs)}, separators=(",", ":")).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"}
        started = time.monotonic()
        try:
            response = self.pool.request(
                "POST", self.url, body=body, headers=headers,
                timeout=urllib3.Timeout(connect=min(self.connect_timeout_s, read), read=read),
            )
        except ReadTimeoutError:
            return Answer(None, error="timeout", latency_ms=_since(started))
        except ConnectTimeoutError:  # includes NewConnectionError: the request never left
            return Answer(None, error="connect", latency_ms=_since(started))
        except HTTPError:  # reset or truncated mid-reply: it may have been stored
            return Answer(None, error="protocol", latency_ms=_since(started))
        try:
            parsed = json.loads(response.data) if response.data else None
        except ValueError:
            parsed = None
        return Answer(response.status, parsed, dict(response.headers), latency_ms=_since(started))


def _since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
