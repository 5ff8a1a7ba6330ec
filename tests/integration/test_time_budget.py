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
