"""Exactly once by HubSpot itself, end to end: the setup command run as a user runs it (a process, the
token read from the stack's Secrets Manager secret) against a sandbox that starts without the unique
property, then the drain, ledger off, writes with the property the command made, and HubSpot (the
sandbox) refuses the producer's second message for the same payment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from local.stack import workload

from .conftest import end_state

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
EMPTY = {"visible": 0, "in_flight": 0, "delayed": 0}
KEY = "payments_drain_key"  # template.yaml's HubSpotUniqueProperty default, the command's default name


def property_status(stack, name: str) -> int:
    request = urllib.request.Request(
        f"{stack.sandbox.base_url}/crm/v3/properties/commerce_payments/{name}",
        headers={"Authorization": f"Bearer {stack.token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # the loopback sandbox
            return response.status if json.loads(response.read()).get("hasUniqueValue") else -1
    except urllib.error.HTTPError as error:
        return error.code


def setup_command(stack) -> subprocess.CompletedProcess:
    """`python -m payments_drain.tools.setup_hubspot` (docs/deploy.md) with the token's secret, not the token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HUBSPOT_"))}
    env.update(
        PYTHONPATH="layers/shared",
        AWS_ENDPOINT_URL=stack.endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=stack.region,
        HUBSPOT_TOKEN_SECRET_ID=stack.function.environment["HUBSPOT_TOKEN_SECRET_ID"],
    )
    command = [
        sys.executable,
        "-m",
        "payments_drain.tools.setup_hubspot",
        "--base-url",
        stack.sandbox.base_url,
    ]
    return subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_setup_then_the_drain_without_ledger_creates_a_payment_sent_twice_once(local_stack):
    # unique_property "" : the account as it is before setup (None would mean "as setup leaves it").
    stack = local_stack({"EnableLedger": "false"}, sandbox_config={"unique_property": ""})
    assert stack.function.environment["HUBSPOT_UNIQUE_PROPERTY"] == KEY
    assert stack.function.environment["LEDGER_TABLE_NAME"] == ""
    assert property_status(stack, KEY) == 404  # nothing made it yet

    done = setup_command(stack)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"property {KEY}: created (unique values, type string, group payments_drain)" in done.stdout
    assert done.stdout.splitlines()[-1] == (
        f"ready: deploy with HubSpotUniqueProperty={KEY} (HUBSPOT_UNIQUE_PROPERTY)"
    )
    assert stack.token not in done.stdout + done.stderr
    assert property_status(stack, KEY) == 200

    payments = workload.generate(20, invalid_share=0.0, seed=21)
    first = stack.enqueue(payments)
    assert stack.drain(timeout=40).empty
    again = stack.enqueue(payments)  # the producer sends each payment again: new messages, same keys
    assert stack.drain(timeout=40).empty
    assert not set(first.message_ids) & set(again.message_ids)
    rounds = set(first.message_ids), set(again.message_ids)
    assert all(
        set(b["messageIds"]) <= rounds[0] or set(b["messageIds"]) <= rounds[1] for b in stack.batches
    )  # each copy in a batch of its own round

    stored = stack.sandbox.control.payments()
    keys = [p["properties"].get(KEY) for p in stored]
    assert sorted(keys) == sorted(it.payment_key for it in payments)  # each once, keyed by the property
    assert {p["objectWriteTraceId"] for p in stored} <= set(first.message_ids)  # the second copies made none
    metrics = stack.sink.metrics()
    assert metrics["PaymentsCreated"]["sum"] == len(payments)
    assert metrics["PaymentsDuplicate"]["sum"] == len(payments)  # HubSpot's conflict, settled as duplicate
    stats = stack.sandbox.control.stats()
    assert stats["inputs_received"] == 2 * len(payments)  # the copies refused by HubSpot, not skipped by us
    assert stack.failure_reports() == []
    assert stack.queue_counts() == EMPTY and stack.queue_counts(stack.dlq_url) == EMPTY


def test_a_deploy_before_setup_holds_every_payment_until_the_property_exists(local_stack):
    """The template's defaults deployed before `make setup-hubspot` ran: HubSpot answers that the
    unique property does not exist. That is the deployment's fault, not the payments': none is
    reported or lost, each is held on the queue, counted in its alarm's metric, the log says what
    to run, and once the setup command made the property every payment is created, each once."""
    stack = local_stack({"MaxReceiveCount": "10"}, sandbox_config={"unique_property": ""})
    assert stack.function.environment["HUBSPOT_UNIQUE_PROPERTY"] == KEY
    items = workload.generate(40, invalid_share=0.1, seed=23)
    enq = stack.enqueue(items)
    invalid_ids = {mid for mid, it in enq.by_message_id.items() if not it.valid}
    valid = len(items) - len(invalid_ids)
    assert invalid_ids and valid

    assert not stack.drain(timeout=6).empty  # they wait: nothing to drain until the property exists
    assert stack.sandbox.control.payments() == []
    assert {r["messageId"] for r in stack.failure_reports()} == invalid_ids  # only the bad messages
    assert stack.queue_counts(stack.dlq_url) == EMPTY
    metrics = stack.sink.metrics()
    assert metrics["UniquePropertyMissing"]["sum"] >= valid  # the alarm's metric
    assert metrics["PaymentsHeld"]["sum"] >= valid  # hidden on the queue, not back every visibility timeout
    errors = [
        line
        for line in stack.sink.json_lines()
        if line.get("reason", {}).get("category") == "UNIQUE_PROPERTY_MISSING"
    ]
    assert errors and {line["level"] for line in errors} == {"ERROR"}
    assert KEY in errors[0]["reason"]["message"] and "make setup-hubspot" in errors[0]["reason"]["message"]

    done = setup_command(stack)
    assert done.returncode == 0, done.stdout + done.stderr
    assert stack.drain(timeout=60).empty
    state = end_state(stack, enq)
    assert set(state["created"]) == {it.payment_key for it in items if it.valid}
    assert set(state["created"].values()) == {1}
    assert set(state["reports"]) == invalid_ids and all(len(r) == 1 for r in state["reports"].values())
    assert state["queue"] == EMPTY and state["dlq"] == EMPTY
