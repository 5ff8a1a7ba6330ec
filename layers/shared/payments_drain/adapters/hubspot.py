"""Adapter: HubSpot commerce_payments batch/create (or upsert) and batch/read over urllib3.

One connection pool per container, reused across invocations (connections stay warm), TLS verified,
no automatic retries: a POST that may have been stored must not be resent blindly, so the
orchestration decides (urllib3's Retry would either skip POST or resend it without knowing that).
Every call has a hard deadline for the whole exchange (connect, send, the complete answer), and
``min_call_s`` says how much time a call needs to be worth starting (docs/hubspot.md).
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import socket
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import urllib3
from pydantic_core import from_json, to_json
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, HTTPError, ReadTimeoutError

from payments_drain.core import clock
from payments_drain.core.batching import Answer, unexpected_shape
from payments_drain.core.links import unexpected_shape as links_shape
from payments_drain.core.observability import logger, traced

PATHS = {  # (api version, write mode): batch/create, or batch/upsert by a unique property
    ("v3", "create"): "/crm/v3/objects/commerce_payments/batch/create",
    ("2026-09", "create"): "/crm/objects/2026-09/commerce_payments/batch/create",
    ("v3", "upsert"): "/crm/v3/objects/commerce_payments/batch/upsert",
    ("2026-09", "upsert"): "/crm/objects/2026-09/commerce_payments/batch/upsert",
    ("v3", "read"): "/crm/v3/objects/commerce_payments/batch/read",  # by id, or by idProperty
    ("2026-09", "read"): "/crm/objects/2026-09/commerce_payments/batch/read",
}
# Upsert mode's links (``links``): the associations API's batch create, from payments to one target
# type. The date version has its own path; v4's (/crm/v4/associations, ending March 30, 2027) serves
# while v3 is selected.
LINK_PATHS = {
    "v3": "/crm/v4/associations/commerce_payments/{to}/batch/create",
    "2026-09": "/crm/associations/2026-09/commerce_payments/{to}/batch/create",
}
BASE_URL = "https://api.hubapi.com"  # HubSpot's API (template.yaml's HubSpotBaseUrl default)
EXPECTED_ANSWER_S = 1.0  # a realistic batch/create answer before any was seen (docs/hubspot.md)
LATENCY_WINDOW = 50  # answers remembered for min_call_s


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
    """HubSpot's batch calls the drain makes (write, read, links) at their URLs, each answer
    checked against its documented shape, and the least time worth starting a call with."""

    def __init__(
        self,
        base_url: str,
        api_version: str = "v3",
        connect_timeout_s: float = 3.05,
        read_timeout_s: float = 15.0,
        max_connections: int = 8,
        write_mode: str = "create",
    ) -> None:
        base = urlsplit(check_base_url(base_url))
        prefix = base.path  # the paths below are under the base URL's own, if it has one
        self.write_path = prefix + PATHS[api_version, write_mode]
        self.read_path = prefix + PATHS[api_version, "read"]
        self.links_path = prefix + LINK_PATHS[api_version]
        self.connect_timeout_s = connect_timeout_s
        self.answer_times = AnswerTimes()
        self.exchange = HttpExchange(
            f"{base.scheme}://{base.netloc}",
            connect_timeout_s,
            read_timeout_s,
            max_connections,
            self.answer_times,
        )

    def min_call_s(self) -> float:
        """The least time left worth starting a call with (the orchestration's rule, docs/hubspot.md):
        the connect timeout, as a new connection may be needed, plus a realistic answer time, the
        90th percentile of the last answers this client saw (``EXPECTED_ANSWER_S`` before any)."""
        return self.connect_timeout_s + self.answer_times.expected_s()

    def write_links(
        self, to_type: str, inputs: Sequence[dict[str, Any]], token: str, time_left_s: float | None = None
    ) -> Answer:
        """One associations batch create, from payments to ``to_type`` (as ``write_batch``)."""
        path = self.links_path.format(to=quote(to_type, safe=""))
        return self.write_batch(inputs, token, time_left_s, path=path, check=links_shape)

    @traced(capture_response=False, capture_error=False)
    def write_batch(
        self,
        inputs: Sequence[dict[str, Any]],
        token: str,
        time_left_s: float | None = None,
        *,
        path: str | None = None,
        check=unexpected_shape,
    ) -> Answer:
        """One POST, ended by ``time_left_s`` (connect, send and the whole answer; without it, by
        connect plus read timeout). Never raises: HTTP or network trouble is in the Answer, and no
        exception text from the HTTP layer (which can quote request headers, the token among them)
        is logged, traced or returned."""
        answer = self.exchange.post(path or self.write_path, {"inputs": list(inputs)}, token, time_left_s)
        if answer.error is None and (shape := check(answer)) is not None:  # a write's documented shape
            logger.warning(
                "HubSpot answer not as documented",
                extra={
                    "shape": shape,
                    "httpStatus": answer.status,
                    "hubspotCorrelationId": answer.header("X-HubSpot-Correlation-Id"),
                },
            )
        return answer

    @traced(capture_response=False, capture_error=False)
    def read_batch(
        self,
        ids: Sequence[str],
        token: str,
        properties: Sequence[str] = (),
        id_property: str | None = None,
        time_left_s: float | None = None,
    ) -> Answer:
        """One batch/read of at most 100 ``ids``: HubSpot ids, or with ``id_property`` values of that
        unique property (docs/hubspot.md, "Batch read"). Never raises, as ``write_batch``."""
        return self.exchange.post(self.read_path, read_body(ids, properties, id_property), token, time_left_s)


def read_body(ids: Sequence[str], properties: Sequence[str], id_property: str | None) -> dict[str, Any]:
    """batch/read's request body (the simulated HubSpot reads the same)."""
    body: dict[str, Any] = {"inputs": [{"id": i} for i in ids], "properties": list(properties)}
    if id_property:
        body["idProperty"] = id_property
    return body


class AnswerTimes:
    """The times of the last answers (``LATENCY_WINDOW``), for a realistic answer time."""

    def __init__(self) -> None:
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._latencies.append(seconds)

    def expected_s(self) -> float:
        """Their 90th percentile (``EXPECTED_ANSWER_S`` before any)."""
        with self._lock:
            observed = sorted(self._latencies)
        return observed[int(0.9 * (len(observed) - 1))] if observed else EXPECTED_ANSWER_S


class HttpExchange:
    """One JSON POST over urllib3's connection pool for one origin (the client's only host),
    ended at a deadline for the whole exchange; never raises. Each answer's time goes to
    ``answer_times``. The pool itself, not a PoolManager: a manager parses each URL again and
    looks its pool up per request, ~25 µs per call for nothing (docs/performance.md, figure a)."""

    def __init__(
        self,
        origin: str,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_connections: int,
        answer_times: AnswerTimes,
    ) -> None:
        self.read_timeout_s = read_timeout_s
        self.connect_timeout_s = connect_timeout_s
        parts = urllib3.util.parse_url(origin)
        tls = {"cert_reqs": "CERT_REQUIRED"} if parts.scheme == "https" else {}
        self.pool = _WATCHED_POOLS[parts.scheme](
            parts.host,
            parts.port,
            maxsize=max_connections,
            block=False,
            retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
            **tls,
        )
        self.answer_times = answer_times

    def post(self, path: str, payload: dict[str, Any], token: str, time_left_s: float | None) -> Answer:
        limit = self.connect_timeout_s + self.read_timeout_s if time_left_s is None else max(0.1, time_left_s)
        # pydantic_core's JSON both ways: compact UTF-8 in one pass from the inputs as they are, a
        # quarter of json.dumps' CPU for a call of 100 and 60 % of json.loads' for its ~54 KB
        # answer (docs/performance.md, figure a). Every text in the inputs came through from_json,
        # which refuses lone surrogates, so to_json never meets one it cannot encode.
        body = to_json(payload)
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        timeout = urllib3.Timeout(
            connect=min(self.connect_timeout_s, limit), read=min(self.read_timeout_s, limit)
        )
        started = clock.monotonic()
        deadline = _Deadline(limit)
        _exchange.deadline = deadline
        response = None
        try:
            response = self.pool.urlopen(
                "POST",
                path,
                body=body,
                headers=headers,
                timeout=timeout,
                redirect=False,
                preload_content=False,
            )
            data = response.read()
        except ConnectTimeoutError:  # includes NewConnectionError: the request never left
            return Answer(None, error="connect", latency_ms=_since(started))
        except ReadTimeoutError:
            return Answer(None, error="timeout", latency_ms=_since(started))
        except HTTPError:  # cut by the deadline, or reset or truncated mid-reply: it may have been stored
            error = "timeout" if deadline.expired else "protocol"
            return Answer(None, error=error, latency_ms=_since(started))
        except Exception as error:  # noqa: BLE001 - e.g. http.client's header checks quote the header's value
            logger.error(
                "HubSpot request failed in the HTTP client", extra={"errorType": type(error).__name__}
            )
            return Answer(None, error="client", latency_ms=_since(started))
        finally:
            deadline.finish()
            _exchange.deadline = None
            if response is not None:
                if deadline.expired:  # the timer shut its socket down: never hand that connection out again
                    response.close()
                response.release_conn()
        latency_ms = _since(started)
        self.answer_times.add(latency_ms / 1000)
        try:
            parsed = from_json(data) if data else None
        except ValueError:
            parsed = None
        return Answer(response.status, parsed, dict(response.headers), latency_ms=latency_ms)


def _since(started: float) -> float:
    return round((clock.monotonic() - started) * 1000, 1)


# -- the exchange deadline --------------------------------------------------------------------
# Written by hand because urllib3 has no deadline for a whole exchange: its Timeout bounds the
# connect and each socket read ("if a server streams one byte every fifteen seconds, a timeout of
# 20 seconds will not trigger", urllib3.util.Timeout's docs), and HTTPResponse.shutdown() reaches
# only the body, not a status line or headers that trickle. So a watchdog shuts the exchange's
# socket down at the deadline; the blocked read or send then fails at once, and urllib3 discards
# the connection. The connection classes below tell the deadline which socket the exchange uses.
# One watchdog thread serves every exchange of the process: a threading.Timer per call started a
# thread per call, 0.13 ms of CPU each (docs/performance.md, figure a).

_exchange = threading.local()  # .deadline: the _Deadline of the call running in this thread


class _Watchdog:
    """Expires each ``_Deadline`` at its time, from one daemon thread started on first use.
    Finished deadlines stay queued until their time comes and are dropped then (nothing to do)."""

    def __init__(self) -> None:
        self.wake = threading.Condition()
        self.queue: list[tuple[float, int, _Deadline]] = []  # a heap by time
        self.order = itertools.count()  # ties in time: first come, first expired
        self.thread: threading.Thread | None = None

    def add(self, deadline: _Deadline) -> None:
        with self.wake:
            heapq.heappush(self.queue, (deadline.at, next(self.order), deadline))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="hubspot-deadlines", daemon=True)
                self.thread.start()
            elif self.queue[0][2] is deadline:  # earlier than the one the thread waits for
                self.wake.notify()

    def _run(self) -> None:
        with self.wake:
            while True:
                now = clock.monotonic()
                while self.queue and self.queue[0][0] <= now:
                    heapq.heappop(self.queue)[2].expire()
                self.wake.wait(self.queue[0][0] - now if self.queue else None)


_WATCHDOG = _Watchdog()


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.expired = False
        self.done = False
        self.at = clock.monotonic() + seconds
        _WATCHDOG.add(self)

    def watch(self, sock: socket.socket | None) -> None:
        with self.lock:
            self.sock = sock
            if self.expired:
                _shutdown(sock)

    def expire(self) -> None:
        with self.lock:  # never after finish(): by then the connection may be back in the pool
            if not self.done:
                self.expired = True
                _shutdown(self.sock)

    def finish(self) -> None:
        with self.lock:
            self.done = True


def _shutdown(sock: socket.socket | None) -> None:
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed
            pass


def _watch(sock: socket.socket | None) -> None:
    deadline = getattr(_exchange, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


class _Watched:
    """Mixin for urllib3's connection classes: a new or reused socket is given to the deadline."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _watch(self.sock)  # type: ignore[attr-defined]

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)  # type: ignore[attr-defined] - None on a new connection: connect() follows
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
