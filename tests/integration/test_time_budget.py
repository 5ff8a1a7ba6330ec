"""An invocation ends inside its time while HubSpot trickles its answer: the real handler, the
template's resources in moto, a loopback server that sends a byte every 0.2 s, real time."""

import time
from pathlib import Path

import pytest

from tests.slow_http import SlowServer
from tests.twins import LambdaContext, import_app, payment_body, sqs_record

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def trickling_hubspot():
    with SlowServer("trickle", interval_s=0.2, give_up_s=15, headers_first=True) as server:
        yield server


@pytest.fixture
def handler(deploy, trickling_hubspot, monkeypatch):
    deploy(trickling_hubspot.base_url)
    # A short connect timeout, so that a call still fits the 6 s invocation and is started.
    monkeypatch.setenv("HUBSPOT_CONNECT_TIMEOUT_SECONDS", "0.5")
    return import_app(ROOT / "functions/drain/app.py").lambda_handler


def test_an_invocation_with_6_s_to_live_returns_before_6_s_while_hubspot_trickles(handler, trickling_hubspot):
    event = {"Records": [sqs_record(payment_body(f"k{i}"), f"m{i}") for i in range(3)]}
    started = time.monotonic()
    response = handler(event, LambdaContext(remaining_ms=6_000))
    elapsed = time.monotonic() - started
    assert trickling_hubspot.requests >= 1  # the call was made, and cut
    assert elapsed < 6.0
    # No answer came: the payments may have been stored, so they go back to the queue, not lost.
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m{i}"} for i in range(3)]}


@pytest.fixture
def slow_slots_table(monkeypatch):
    """A DynamoDB endpoint answering every request after 1.5 s (benchmarks.dynamo_stub: real
    protocol, every slot found free and every claim accepted), for the rate slots alone."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.dynamo_stub", "--delay-ms", "1500"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
        yield url
    finally:
        proc.kill()
        proc.wait()


def test_a_slot_that_comes_too_late_starts_no_call(deploy, trickling_hubspot, slow_slots_table, monkeypatch):
    """The slots' read and claim take 3 s of a 4 s budget: the call would start with less than a
    connection and a realistic answer left and be cut, leaving the payments ambiguous. It does not
    start: the payments are retried, surely not stored."""
    deploy(trickling_hubspot.base_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", slow_slots_table)  # deploy pointed it at DynamoDB Local
    monkeypatch.setenv("LEDGER_TABLE_NAME", "")  # only the slots use DynamoDB here
    monkeypatch.setenv("HUBSPOT_CONNECT_TIMEOUT_SECONDS", "0.5")  # a call needs 1.5 s: 0.5 + 1.0 answer
    handler = import_app(ROOT / "functions/drain/app.py").lambda_handler
    event = {"Records": [sqs_record(payment_body(f"k{i}"), f"m{i}") for i in range(3)]}
    started = time.monotonic()
    response = handler(event, LambdaContext(remaining_ms=6_000))
    assert time.monotonic() - started < 6.0
    assert trickling_hubspot.requests == 0
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m{i}"} for i in range(3)]}
