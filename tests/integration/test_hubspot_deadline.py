"""The HubSpot client ends every exchange by its deadline: real time, real loopback sockets.

urllib3's read timeout bounds each socket read, so a server that answers a byte every 0.2 s never
trips it; a fake clock that stands still during a call could not show that.
"""

import threading
import time

import pytest
from payments_drain.adapters.hubspot import HubSpotClient
from payments_drain.core.batching import settle
from payments_drain.core.messages import parse_record

from tests.slow_http import SlowServer
from tests.twins import payment_body, sqs_record

SLACK_S = 1.0  # threads and the loopback, on a loaded two-core machine


def chunk(n=2):
    return [parse_record(sqs_record(payment_body(f"k{i}"), f"m{i}")) for i in range(n)]


def call(base_url, time_left_s, **client):
    payments = chunk()
    hubspot = HubSpotClient(base_url, **client)
    started = time.monotonic()
    answer = hubspot.write_batch([p.hubspot_input() for p in payments], "t", time_left_s=time_left_s)
    return answer, time.monotonic() - started, payments


@pytest.mark.parametrize("headers_first", [True, False], ids=["trickled-body", "trickled-head"])
def test_a_trickled_answer_is_cut_at_the_deadline_as_an_ambiguous_timeout(headers_first):
    with SlowServer("trickle", interval_s=0.2, give_up_s=10, headers_first=headers_first) as server:
        answer, elapsed, payments = call(server.base_url, 1.0)
        assert server.requests == 1
    assert elapsed < 1.0 + SLACK_S
    assert (answer.status, answer.error) == (None, "timeout")
    assert settle(payments, answer).ambiguous  # it may have been stored


def test_a_server_that_never_answers_is_cut_at_the_deadline():
    with SlowServer("hang", give_up_s=10) as server:
        answer, elapsed, payments = call(server.base_url, 1.0, read_timeout_s=30.0)
        assert server.requests == 1
    assert elapsed < 1.0 + SLACK_S
    assert (answer.status, answer.error) == (None, "timeout")


def test_without_a_time_left_the_exchange_is_bounded_by_connect_plus_read_timeout():
    with SlowServer("trickle", interval_s=0.2, give_up_s=10, headers_first=True) as server:
        answer, elapsed, _ = call(server.base_url, None, connect_timeout_s=0.5, read_timeout_s=1.0)
    assert elapsed < 1.5 + SLACK_S
    assert answer.error == "timeout"


def test_a_connection_cut_by_the_deadline_is_not_reused(hubspot_sandbox):
    """The next call on the same client gets a fresh connection and a real answer."""
    with SlowServer("hang", give_up_s=10) as server:
        hubspot = HubSpotClient(server.base_url)
        answer = hubspot.write_batch([p.hubspot_input() for p in chunk()], "t", time_left_s=0.5)
        assert answer.error == "timeout"
    good = HubSpotClient(hubspot_sandbox.base_url)
    for time_left_s in (0.5, 5):
        inputs = [p.hubspot_input() for p in chunk()]
        assert good.write_batch(inputs, hubspot_sandbox.token, time_left_s=time_left_s).status == 201


def test_min_call_s_is_connect_timeout_plus_a_realistic_answer(hubspot_sandbox):
    hubspot = HubSpotClient(hubspot_sandbox.base_url, connect_timeout_s=0.5)
    assert hubspot.min_call_s() == pytest.approx(0.5 + 1.0)  # nothing observed yet: a 1 s answer
    hubspot_sandbox.control.set_faults(latency_ms=1500)
    for _ in range(3):
        assert hubspot.write_batch([p.hubspot_input() for p in chunk()], hubspot_sandbox.token).status == 201
    assert 0.5 + 1.5 <= hubspot.min_call_s() < 0.5 + 1.5 + 3 * SLACK_S  # the answers observed were slower


def test_the_sandbox_trickling_a_stored_answer_is_cut_at_the_deadline_and_ambiguous(hubspot_sandbox):
    hubspot_sandbox.control.set_faults(p_trickle=1.0, trickle_interval_s=0.2, trickle_bytes=1)
    payments = chunk()
    started = time.monotonic()
    answer = HubSpotClient(hubspot_sandbox.base_url).write_batch(
        [p.hubspot_input() for p in payments], hubspot_sandbox.token, time_left_s=1.0
    )
    assert time.monotonic() - started < 1.0 + SLACK_S
    assert answer.error == "timeout" and settle(payments, answer).ambiguous
    assert len(hubspot_sandbox.control.payments()) == 2  # stored all the same


def test_the_sandbox_hanging_is_cut_at_the_deadline(hubspot_sandbox):
    hubspot_sandbox.control.set_faults(p_hang=1.0)
    started = time.monotonic()
    answer = HubSpotClient(hubspot_sandbox.base_url).write_batch(
        [p.hubspot_input() for p in chunk()], hubspot_sandbox.token, time_left_s=1.0
    )
    assert time.monotonic() - started < 1.0 + SLACK_S
    assert answer.error == "timeout"
    assert hubspot_sandbox.control.payments() == []


def test_concurrent_exchanges_share_one_watchdog_and_each_ends_at_its_own_deadline(hubspot_sandbox):
    """Calls started later with an earlier deadline are cut first, and no thread is started per
    call (a threading.Timer per call made one more thread for each call in flight)."""
    hubspot_sandbox.control.set_faults(p_hang=1.0)
    hubspot = HubSpotClient(hubspot_sandbox.base_url, max_connections=4)
    ended = {}

    def call(name, time_left_s):
        started = time.monotonic()
        answer = hubspot.write_batch(
            [p.hubspot_input() for p in chunk()], hubspot_sandbox.token, time_left_s=time_left_s
        )
        ended[name] = (answer.error, time.monotonic() - started)

    before = threading.active_count()
    callers = [threading.Thread(target=call, args=(f"long{i}", 3.0)) for i in range(3)]
    callers.append(threading.Thread(target=call, args=("short", 1.0)))  # the earliest deadline, last
    for caller in callers:
        caller.start()
        time.sleep(0.05)
    time.sleep(0.4)
    in_flight = threading.active_count() - before
    for caller in callers:
        caller.join(timeout=10)
    assert in_flight <= len(callers) + 1  # the callers, and the watchdog if no call started it yet
    assert {error for error, _ in ended.values()} == {"timeout"}
    assert ended["short"][1] < 1.0 + SLACK_S
    assert all(3.0 <= ended[f"long{i}"][1] < 3.0 + SLACK_S for i in range(3))
