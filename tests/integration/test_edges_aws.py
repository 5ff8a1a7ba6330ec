"""The drain's AWS steps at the edges (issue 21), against DynamoDB Local and hanging endpoints in
real time: a claim that fails half-way, a damaged rate slots item, AWS steps after the last HubSpot
call that would outlast the invocation."""

import time
import uuid

import boto3
import pytest
from payments_drain.adapters.ledger import DynamoLedger, LedgerUnavailable
from payments_drain.adapters.rate_slots import DynamoRateSlots, _decode
from payments_drain.adapters.visibility import SqsVisibility
from payments_drain.orchestration.drain import Budget, Drain
from payments_drain.orchestration.pacing import DailyLimit, RateGate

from tests.slow_http import SlowServer
from tests.twins import InMemoryReporter, ScriptedHubSpot, StaticToken, error_answer, payment_body, sqs_record


def new_table(prefix: str, key: str) -> str:
    table = f"{prefix}-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return table


@pytest.fixture
def ledger_table(aws_env):
    return new_table("ledger", "paymentKey")


class _Http:
    status_code = 500
    headers: dict = {}


def fail_put_item_number(client, n):
    """The n-th PutItem of this client answers InternalServerError (botocore's before-call hook, as
    its Stubber uses): a take-over that fails after others succeeded."""
    calls = []

    def hook(**_):
        calls.append(1)
        if len(calls) == n:
            return _Http(), {"Error": {"Code": "InternalServerError", "Message": "injected"}}
        return None

    client.meta.events.register("before-call.dynamodb.PutItem", hook)


def test_a_claim_failing_half_way_gives_an_applied_payment_back_its_record_not_a_deletion(ledger_table):
    """Upsert mode: 'a' (applied at version 3) is taken over, then taking over 'b' fails. The
    claim on 'a' must go back to version 3 and its HubSpot id: deleting it (what a release does)
    would let an older version through next time, and forget the id."""
    later = int((time.time() + 600) * 1000)
    setup = DynamoLedger(ledger_table)
    setup.claim(["a", "b"], "req-0", later, {"a": 3, "b": 1})
    setup.record_created({"a": "901", "b": "902"}, {"a": 3, "b": 1})
    ledger = DynamoLedger(ledger_table, parallelism=1)
    fail_put_item_number(ledger.client, 2)
    with pytest.raises(LedgerUnavailable):
        ledger.claim(["a", "b"], "req-x", later, {"a": 4, "b": 5})
    item = boto3.client("dynamodb").get_item(TableName=ledger_table, Key={"paymentKey": {"S": "a"}})["Item"]
    assert (item["status"]["S"], item["version"]["N"], item["hubspotId"]["S"]) == ("created", "3", "901")
    assert DynamoLedger(ledger_table).claim(["a"], "req-y", later, {"a": 2})["a"].state == "stale"


def test_a_claim_half_way_releases_only_its_own_new_claims(ledger_table):
    later = int((time.time() + 600) * 1000)
    DynamoLedger(ledger_table).claim(["other"], "req-other", later)
    ledger = DynamoLedger(ledger_table, parallelism=1)
    fail_put_item_number(ledger.client, 1)
    stale = int((time.time() - 1) * 1000)
    DynamoLedger(ledger_table).claim(["expired"], "req-dead", stale)  # its invocation died
    with pytest.raises(LedgerUnavailable):
        ledger.claim(["new", "other", "expired"], "req-x", later)
    keys = {
        i["paymentKey"]["S"]: i.get("claimant", {}).get("S")
        for i in boto3.client("dynamodb").scan(TableName=ledger_table)["Items"]
    }
    assert keys == {"other": "req-other", "expired": "req-dead"}  # 'new' released, the others untouched


@pytest.fixture
def slots_table(aws_env):
    return new_table("slots", "name")


def test_a_damaged_rate_slots_item_is_repaired_and_never_fatal(slots_table, log_lines):
    boto3.client("dynamodb").put_item(
        TableName=slots_table,
        Item={"name": {"S": "hubspot-rate-timeline"}, "log": {"S": "by hand"}, "queue": {"BOOL": True}},
    )
    now = -(-int(time.time() * 1000) // 50) * 50  # on the slots' grid
    slots = DynamoRateSlots(slots_table, 3, parallel=3)
    assert slots.claim(3, now, now + 60_000).starts_ms == [now] * 3
    assert slots.claim(1, now, now).retry_at_ms is not None  # the damaged queue is replaced too
    key = {"name": {"S": "hubspot-rate-timeline"}}
    item = boto3.client("dynamodb").get_item(TableName=slots_table, Key=key)["Item"]
    assert _decode(item["log"]) == [now] * 3 and "N" in item["queue"]
    repaired = [line for line in log_lines() if "rate slots item repaired" in line]
    assert len(repaired) == 2


def _drain_holding_through(visibility, hubspot):
    return Drain(
        hubspot,
        StaticToken(),
        None,
        InMemoryReporter(),
        visibility=visibility,
        parallel_calls=1,
        gate=RateGate(190),
        daily=DailyLimit(300),
    )


def test_holds_sent_to_an_sqs_that_hangs_never_keep_the_invocation_past_its_deadline(aws_env):
    """Holds go out after the last HubSpot call; botocore's bounded retries against an endpoint
    that never answers take about 7 s. With 1.5 s of budget and a 1.5 s margin the invocation
    must answer within 2.7 s whatever SQS does (real time, a loopback server that never answers)."""
    with SlowServer("hang", give_up_s=30) as server:
        visibility = SqsVisibility(boto3.client("sqs", endpoint_url=server.base_url))
        hubspot = ScriptedHubSpot([error_answer(429, "RATE_LIMIT", policyName="DAILY")])
        drain = _drain_holding_through(visibility, hubspot)
        budget = Budget(time.monotonic() + 1.5, margin_s=1.5)
        started = time.monotonic()
        result = drain.run(
            [sqs_record(payment_body("k1"), "m1")], budget, "req", "arn:aws:sqs:us-east-1:123456789012:q"
        )
        elapsed = time.monotonic() - started
    assert result.response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert elapsed < 3.0 + 1.0  # the answer deadline (2.7 s) and a loaded machine's slack
    assert server.requests >= 1  # the hold was tried
