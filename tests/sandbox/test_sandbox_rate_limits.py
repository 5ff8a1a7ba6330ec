"""Rate limits: headers on every response, the rolling window under concurrency, the daily limit."""

from __future__ import annotations

import threading
import time

from sandbox_http import LIST, RATE_HEADERS, batch

from local.hubspot_sandbox import WRITE_SCOPE


def _assert_rate_headers(reply, max_=190, daily=1_000_000):
    for name in RATE_HEADERS:
        assert reply.headers[name].isdigit(), name
    assert reply.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert reply.headers["X-HubSpot-RateLimit-Max"] == str(max_)
    assert reply.headers["X-HubSpot-RateLimit-Daily"] == str(daily)
    assert reply.headers["X-HubSpot-Correlation-Id"]


def test_every_response_carries_the_rate_limit_headers(api, control):
    control.set_config(tokens={"reader": {"scopes": []}})
    replies = {
        201: api.create(batch(1)),
        207: api.create([*batch(1), *batch(1, hs_initial_amount="x")]),
        400: api.create(batch(1, False, hs_initial_amount="x")),
        401: api.create(batch(1), token=None),
        403: api.create(batch(1), token="reader"),
        404: api.get(LIST + "/42"),
        200: api.get(LIST),
    }
    for status, reply in replies.items():
        assert reply.status == status
        _assert_rate_headers(reply)
    control.set_config(rate_limit_per_10s=0)
    reply = api.create(batch(1))
    assert reply.status == 429
    _assert_rate_headers(reply, max_=0)
    assert reply.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_remaining_counts_down_per_request(api):
    remaining = [int(api.create(batch(1)).headers["X-HubSpot-RateLimit-Remaining"]) for _ in range(3)]
    assert remaining == [189, 188, 187]
    daily = int(api.get(LIST).headers["X-HubSpot-RateLimit-Daily-Remaining"])
    assert daily == 1_000_000 - 4


def test_concurrent_clients_never_get_more_than_the_window_max(api, control):
    control.set_config(rate_limit_per_10s=20)
    statuses: list[int] = []
    bodies: list[dict] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def client() -> None:
        barrier.wait()
        for _ in range(6):
            reply = api.create(batch(2))
            with lock:
                statuses.append(reply.status)
                if reply.status == 429:
                    bodies.append(reply.json)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(statuses) == 48
    assert sum(200 <= s < 300 for s in statuses) == 20
    assert statuses.count(429) == 28
    for body in bodies:
        assert body["status"] == "error"
        assert body["errorType"] == "RATE_LIMIT"
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert body["correlationId"]
    stats = control.stats()
    assert stats["max_admitted_in_window"] == 20
    assert stats["max_requests_in_window"] == 48
    assert stats["rate_limited"] == {"TEN_SECONDLY_ROLLING": 28}
    assert stats["payments_stored"] == 40


def test_each_token_has_its_own_window(api, control):
    control.set_config(rate_limit_per_10s=2, tokens={"other": {"scopes": [WRITE_SCOPE]}})
    assert [api.create(batch(1)).status for _ in range(3)] == [201, 201, 429]
    assert api.create(batch(1), token="other").status == 201


def test_the_window_rolls(api, control):
    control.set_config(rate_limit_per_10s=3, rate_limit_interval_ms=1000)
    assert [api.create(batch(1)).status for _ in range(4)] == [201, 201, 201, 429]
    time.sleep(1.05)
    reply = api.create(batch(1))
    assert reply.status == 201
    assert reply.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"


def test_the_daily_limit_answers_429_daily(api, control):
    control.set_config(daily_limit=3)
    assert [api.create(batch(1)).status for _ in range(3)] == [201, 201, 201]
    reply = api.create(batch(1))
    assert reply.status == 429
    assert reply.json["policyName"] == "DAILY"
    assert reply.json["errorType"] == "RATE_LIMIT"
    assert reply.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    assert control.stats()["payments_stored"] == 3


def test_refused_requests_do_not_use_up_the_window(api, control):
    control.set_config(rate_limit_per_10s=2)
    for _ in range(5):
        assert api.create(batch(1), token="wrong").status == 401
    assert [api.create(batch(1)).status for _ in range(3)] == [201, 201, 429]


def test_the_timeline_records_when_each_request_was_read_counted_and_answered(api, control):
    control.set_config(rate_limit_per_10s=1)
    first = api.create(batch(1))
    refused = api.create(batch(1))
    assert (first.status, refused.status) == (201, 429)
    timeline = control.timeline()
    assert (timeline["rate_limit_per_10s"], timeline["window_ms"]) == (1, 10000)
    counted, throttled = timeline["requests"]
    assert counted["arrived"] <= counted["admitted"] <= counted["answered"] <= timeline["now"]
    assert (counted["status"], counted["remaining"]) == ("201", 0)
    assert throttled["admitted"] is None and throttled["status"] == "429"
    control.reset()
    assert control.timeline()["requests"] == []
