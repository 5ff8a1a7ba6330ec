"""Client for the sandbox's control routes (standard library only)."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import quote, urlsplit


class SandboxControlError(RuntimeError):
    pass


class SandboxControl:
    """Talks to ``{base_url}/_sandbox/...``. One short-lived connection per call, so it is thread-safe."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        payload = json.loads(raw) if raw else None
        if resp.status != 200:
            raise SandboxControlError(f"{method} {path} -> {resp.status}: {payload}")
        return payload

    def health(self) -> bool:
        return bool(self._call("GET", "/_sandbox/health").get("ok"))

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset (see docs/sandbox.md for every key)."""
        return self._call("GET", "/_sandbox/stats")

    def timeline(self) -> dict[str, Any]:
        """The public requests answered since the last reset (the newest 100,000), in answer order:
        ``arrived``, ``admitted`` (counted against the rolling window; None if refused before),
        ``answered`` (sandbox monotonic seconds), ``status``, ``remaining`` (the header sent)."""
        return self._call("GET", "/_sandbox/timeline")

    def config(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox/config")

    def set_config(self, **changes: Any) -> dict[str, Any]:
        """Change configuration at run time. ``tokens`` is merged per token (a token mapped to None is
        removed; ``{"tok": {"expired": True}}`` marks one expired); ``faults`` is merged; ``seed``
        re-seeds the generators. Returns the whole configuration now in force."""
        return self._call("POST", "/_sandbox/config", changes)

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox/faults")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Merge these fault options into the ones in force (None restores an option's default)."""
        return self._call("POST", "/_sandbox/faults", faults)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/_sandbox/faults")

    def reset(self, restore_config: bool = False) -> None:
        """Clear payments, counters and rate-limit windows and re-seed the generators. With
        ``restore_config`` the configuration the sandbox was started with is restored too."""
        self._call("POST", "/_sandbox/reset", {"restore_config": restore_config})

    def payments(self, object_write_trace_id: str | None = None) -> list[dict[str, Any]]:
        """Every stored payment in creation order, read through the control route (not the public list
        route, so it is never rate limited, faulted or counted). Each record has ``id``, ``properties``
        (all of them), ``createdAt``, ``updatedAt``, ``archived``, ``associations`` and the
        ``objectWriteTraceId`` it was created with."""
        path = "/_sandbox/payments"
        if object_write_trace_id is not None:
            path += "?objectWriteTraceId=" + quote(object_write_trace_id, safe="")
        return self._call("GET", path)["results"]
