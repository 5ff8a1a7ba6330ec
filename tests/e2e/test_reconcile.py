"""Reconcile on the local stack: payments drained in upsert mode, then a stale, a missing and a
duplicated payment made on purpose; the command, run as an operator runs it (a process, the token
from the stack's secret, the ledger on DynamoDB Local), finds each of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from payments_drain.adapters.hubspot import HubSpotClient

from local.stack import workload
from local.stack.aws import aws_client_env, boto3_client

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
KEY = "payments_drain_key"  # the template's default unique property
KEYS = [f"pay-{i}" for i in range(20)]


def body(key: str, version: int, status: str) -> dict:
    return {
        "paymentKey": key,
        "version": version,
        "properties": {
            "hs_initial_amount": "49.90",
            "hs_initiated_date": "2026-11-27T10:00:00Z",
            "hs_currency_code": "EUR",
            "hs_latest_status": status,
        },
    }


def reconcile(stack, *argv: str) -> subprocess.CompletedProcess:
    """`python -m payments_drain.tools.reconcile` (docs/tools.md, "Reconcile") with the stack's secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HUBSPOT_"))}
    env.update(aws_client_env(stack.endpoint, stack.region, stack.dynamodb_endpoint))
    environment = stack.function.environment
    env.update(
        PYTHONPATH="layers/shared",
        HUBSPOT_TOKEN_SECRET_ID=environment["HUBSPOT_TOKEN_SECRET_ID"],
        HUBSPOT_BASE_URL=environment["HUBSPOT_BASE_URL"],
        HUBSPOT_UNIQUE_PROPERTY=environment["HUBSPOT_UNIQUE_PROPERTY"],
        LEDGER_TABLE_NAME=environment["LEDGER_TABLE_NAME"],
    )
    command = [sys.executable, "-m", "payments_drain.tools.reconcile", *argv]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def findings(done: subprocess.CompletedProcess) -> tuple[dict[str, dict], dict]:
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return {f["paymentKey"]: f for f in lines[:-1]}, lines[-1]["summary"]


def test_reconcile_finds_a_stale_a_missing_and_a_duplicated_payment_on_the_local_stack(local_stack, tmp_path):
    started = time.time()
    stack = local_stack({"HubSpotWriteMode": "upsert"})
    lines = [body(k, 1, "processing") for k in KEYS] + [body(k, 2, "refunded") for k in KEYS]
    for version in (1, 2):
        stack.enqueue(
            [
                workload.WorkItem(json.dumps(b), "valid", b["paymentKey"])
                for b in lines
                if b["version"] == version
            ]
        )
        assert stack.drain(timeout=40).empty
    assert stack.failure_reports() == []

    # pay-1: another writer puts an older state back. pay-2: a second record of it, without its
    # key (as one created before the unique property was set up), and the ledger names that one.
    # pay-lost: in the producer's file, never sent.
    client = HubSpotClient(stack.sandbox.base_url, write_mode="upsert")
    older = {"id": "pay-1", "idProperty": KEY, "properties": {"hs_latest_status": "processing"}}
    assert client.write_batch([older], stack.token).status == 200
    copy = HubSpotClient(stack.sandbox.base_url).write_batch(
        [{"properties": body("pay-2", 1, "refunded")["properties"]}], stack.token
    )
    assert copy.status == 201
    dynamodb = boto3_client("dynamodb", stack.dynamodb_endpoint, stack.region)
    dynamodb.update_item(
        TableName=stack.function.environment["LEDGER_TABLE_NAME"],
        Key={"paymentKey": {"S": "pay-2"}},
        UpdateExpression="SET hubspotId = :id",
        ExpressionAttributeValues={":id": {"S": copy.body["results"][0]["id"]}},
    )
    path = tmp_path / "payments.jsonl"
    path.write_text("\n".join(json.dumps(b) for b in [*lines, body("pay-lost", 1, "succeeded")]) + "\n")

    done = reconcile(stack, "--file", str(path))
    assert done.returncode == 1, done.stderr
    found, summary = findings(done)
    assert found["pay-1"]["status"] == "stale" and found["pay-1"]["differs"] == ["hs_latest_status"]
    assert found["pay-2"]["status"] == "twice" and len(found["pay-2"]["hubspotIds"]) == 2
    assert found["pay-lost"]["status"] == "missing"
    assert {k for k, f in found.items() if f["status"] == "expected"} == set(KEYS) - {"pay-1", "pay-2"}
    assert (summary["expected"], summary["stale"], summary["missing"], summary["twice"]) == (18, 1, 1, 1)
    assert (
        done.stderr.splitlines()[-1]
        == "reconcile: 21 payments: 18 as expected, 1 stale, 1 missing, 1 twice, 0 unread"
    )
    assert stack.token not in done.stdout + done.stderr

    # The ledger alone, for the time of the incident: every payment it recorded, the copy found.
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started - 5))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 5))
    done = reconcile(stack, "--since", since, "--until", until)
    assert done.returncode == 1, done.stderr
    found, summary = findings(done)
    assert set(found) == set(KEYS) and summary["twice"] == 1 and summary["expected"] == 19
