"""The handler end to end: real SQS events, the HubSpot sandbox over HTTP, moto over
AWS_ENDPOINT_URL, DynamoDB Local over AWS_ENDPOINT_URL_DYNAMODB, resources and environment taken
from template.yaml."""

import gc
import json
import time
from pathlib import Path

import boto3
import pytest
from payments_drain.orchestration.config import ConfigurationError

from local.hubspot_sandbox import SandboxConfig
from tests.twins import CANARY_TOKEN, LambdaContext, import_app, payment_body, sqs_record

ROOT = Path(__file__).resolve().parents[2]
WRITE = ["crm.objects.commercepayments.write"]


def load_handler():
    return import_app(ROOT / "functions/drain/app.py")


@pytest.fixture
def sandbox(hubspot_sandbox_factory):
    # The account as make setup-hubspot leaves it: the template's default unique property exists.
    return hubspot_sandbox_factory(
        SandboxConfig(
            tokens={CANARY_TOKEN: {"scopes": WRITE}, "rotated": {"scopes": WRITE}},
            unique_property="payments_drain_key",
        )
    )


@pytest.fixture
def stack(deploy, sandbox):
    return deploy(sandbox.base_url)


def reports(environment):
    sqs = boto3.client("sqs")
    got = []
    while True:
        answer = sqs.receive_message(
            QueueUrl=environment["FAILURE_QUEUE_URL"], MaxNumberOfMessages=10, VisibilityTimeout=60
        )
        if not answer.get("Messages"):
            return got
        got.extend(json.loads(m["Body"]) for m in answer["Messages"])


def batch_metrics(output):
    """The batch's EMF document (the cold-start metric has one of its own)."""
    documents = [
        json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' in line
    ]
    # Powertools writes every metric's values as a list; a single value is read as itself here.
    return [
        {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in d.items()}
        for d in documents
        if "PaymentsReceived" in d
    ]


def test_mixed_event_creates_valid_reports_invalid_and_emits_metrics(stack, sandbox, capsys, log_lines):
    _, environment = stack
    event = json.loads((ROOT / "events/mixed-batch.json").read_text())
    response = load_handler().lambda_handler(event, LambdaContext())

    assert response == {"batchItemFailures": []}
    stored = sandbox.control.payments()
    reported = reports(environment)
    assert len(stored) + len(reported) == len(event["Records"])
    assert {r["reason"]["code"] for r in reported} >= {"INVALID_JSON", "REQUIRED_PROPERTY", "INVALID_DECIMAL"}
    assert sandbox.control.stats()["requests_by_status"] == {"201": 1}

    out = capsys.readouterr().out
    (emf,) = batch_metrics(out)
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "PaymentsDrain" and ["service"] in directive["Dimensions"]
    assert emf["service"] == "payments-drain"
    assert emf["PaymentsReceived"] == len(event["Records"])
    assert emf["PaymentsCreated"] == len(stored) and emf["PaymentsRejected"] == len(reported)
    assert emf["HubSpotRequests"] == 1 and emf["PaymentsRetried"] == 0
    names = {m["Name"] for m in directive["Metrics"]}
    assert {"HubSpotThrottled", "HubSpotErrors", "HubSpotLatency", "BatchDuration"} <= names

    lines = [json.loads(line) for line in log_lines()]
    (summary,) = [line for line in lines if line["message"] == "batch summary"]
    assert summary["summary"]["created"] == len(stored) and summary["function_request_id"] == "req-1"
    everything = out + "\n".join(log_lines()) + json.dumps(reported) + json.dumps(response)
    assert CANARY_TOKEN not in everything


def test_a_record_holding_a_lone_surrogate_is_reported_and_the_batch_goes_on(stack, sandbox):
    """Not from SQS (it refuses the character), but from a hand-made event: the record's report is
    written (its body's surrogate escaped) and the rest of the batch is created; the parser's
    TypeError used to fail the whole invocation."""
    _, environment = stack
    bad = sqs_record(payment_body("ch_bad"), "m-bad")
    bad["body"] = '{"paymentKey": "ch_bad", "properties": {"hs_internal_comment": "\ud800"}}'
    event = {"Records": [bad, sqs_record(payment_body("ch_ok"), "m-ok")]}
    assert load_handler().lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    (report,) = reports(environment)
    assert (report["messageId"], report["paymentKey"], report["reason"]["code"]) == (
        "m-bad",
        "ch_bad",
        "INVALID_JSON",
    )
    assert [p["properties"]["hs_initial_amount"] for p in sandbox.control.payments()] == ["49.90"]


@pytest.mark.parametrize(
    ("unique", "requests"),
    [
        ("", 0),  # the ledger claimed every payment: it settles the copies without a request
        (None, 2),  # the template's default: HubSpot's unique property refuses them (2 chunks of 100)
    ],
)
def test_redelivered_batch_is_settled_as_duplicates_without_creating_again(
    stack, sandbox, capsys, monkeypatch, unique, requests
):
    if unique is not None:
        monkeypatch.setenv("HUBSPOT_UNIQUE_PROPERTY", unique)
    handler = load_handler()
    event = {"Records": [sqs_record(payment_body(f"ch_{i}"), f"m{i}") for i in range(150)]}
    assert handler.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert len(sandbox.control.payments()) == 150
    again = {"Records": [sqs_record(payment_body(f"ch_{i}"), f"m{i}", receive_count=2) for i in range(150)]}
    capsys.readouterr()
    assert handler.lambda_handler(again, LambdaContext(aws_request_id="req-2")) == {"batchItemFailures": []}
    assert len(sandbox.control.payments()) == 150
    (emf,) = batch_metrics(capsys.readouterr().out)
    assert emf["PaymentsDuplicate"] == 150 and emf["HubSpotRequests"] == requests


def test_rotated_token_is_read_again_after_a_401(stack, sandbox):
    _, environment = stack
    handler = load_handler()
    assert handler.lambda_handler({"Records": [sqs_record(payment_body("a"), "m1")]}, LambdaContext()) == {
        "batchItemFailures": []
    }
    boto3.client("secretsmanager").put_secret_value(
        SecretId=environment["HUBSPOT_TOKEN_SECRET_ID"], SecretString=json.dumps({"token": "rotated"})
    )
    sandbox.control.set_config(
        tokens={CANARY_TOKEN: {"scopes": WRITE, "expired": True}, "rotated": {"scopes": WRITE}}
    )
    response = handler.lambda_handler({"Records": [sqs_record(payment_body("b"), "m2")]}, LambdaContext())
    assert response == {"batchItemFailures": []}
    assert sandbox.control.stats()["requests_by_status"].get("401") == 1
    assert len(sandbox.control.payments()) == 2


def test_missing_scope_keeps_every_message_for_retry(stack, sandbox, capsys):
    sandbox.control.set_config(tokens={CANARY_TOKEN: {"scopes": ["crm.objects.commercepayments.read"]}})
    event = {
        "Records": [sqs_record(payment_body(f"k{i}"), f"m{i}") for i in range(3)] + [sqs_record("{", "bad")]
    }
    response = load_handler().lambda_handler(event, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m{i}"} for i in range(3)]}
    (emf,) = batch_metrics(capsys.readouterr().out)
    assert emf["HubSpotAuthFailures"] == 1 and emf["PaymentsRetried"] == 3 and emf["PaymentsRejected"] == 1


def test_fifo_event(stack, sandbox):
    event = json.loads((ROOT / "events/fifo-batch.json").read_text())
    assert load_handler().lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert len(sandbox.control.payments()) == len(event["Records"])


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("FAILURE_QUEUE_URL", None, "FAILURE_QUEUE_URL is required"),
        ("HUBSPOT_BASE_URL", "http://api.hubapi.com", "HUBSPOT_BASE_URL"),
        ("HUBSPOT_API_VERSION", "v4", "HUBSPOT_API_VERSION"),
        ("HUBSPOT_MAX_PARALLEL_CALLS", "many", "HUBSPOT_MAX_PARALLEL_CALLS"),
    ],
)
def test_bad_configuration_fails_the_cold_start_naming_the_variable(
    stack, monkeypatch, variable, value, named
):
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=named):
        load_handler()
    assert gc.isenabled()  # the cold start runs without the cyclic collector, and gives it back when it fails


def test_the_cold_start_and_each_invocation_run_no_collection_and_leave_the_collector_on(stack, sandbox):
    """The cyclic collector finds nothing to free in either (app.py): it does not run meanwhile,
    and it is on again after each."""
    event = {"Records": [sqs_record(payment_body(f"k{i}"), f"m{i}") for i in range(300)]}
    collections = []

    def count(phase, info):
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        app = load_handler()
        assert gc.isenabled() and collections == []
        assert app.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
        assert gc.isenabled()
    finally:
        gc.callbacks.remove(count)
    assert collections == []
    assert len(sandbox.control.payments()) == 300


def test_a_missing_rate_slots_table_sends_nothing_and_retries_every_payment(
    stack, sandbox, capsys, log_lines, monkeypatch
):
    """The slots table gone (deleted, or no permission): no call may start without a slot, so
    HubSpot gets nothing, every payment is retried and the log names the error code only."""
    monkeypatch.setenv("RATE_SLOTS_TABLE_NAME", "no-such-slots-table")
    event = {"Records": [sqs_record(payment_body(f"k{i}"), f"m{i}") for i in range(3)]}
    response = load_handler().lambda_handler(event, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m{i}"} for i in range(3)]}
    assert sandbox.control.stats()["requests_total"] == 0
    (emf,) = batch_metrics(capsys.readouterr().out)
    assert emf["PaymentsRetried"] == 3 and emf["HubSpotRequests"] == 0
    assert emf["RateSlotsUnavailable"] == 3 and emf["LedgerUnavailable"] == 0  # its alarm's metric
    [line] = [json.loads(x) for x in log_lines() if "rate slots unavailable" in x]
    assert line["level"] == "ERROR"
    assert line["error"] == "rate slots table: get_item failed (ResourceNotFoundException)"


def test_a_missing_ledger_table_sends_nothing_and_counts_every_payment_in_its_alarms_metric(
    stack, sandbox, capsys, monkeypatch
):
    monkeypatch.setenv("LEDGER_TABLE_NAME", "no-such-ledger-table")
    monkeypatch.setenv("HUBSPOT_UNIQUE_PROPERTY", "")  # the ledger claims every payment
    event = {"Records": [sqs_record(payment_body(f"k{i}"), f"m{i}") for i in range(3)]}
    response = load_handler().lambda_handler(event, LambdaContext())
    assert len(response["batchItemFailures"]) == 3
    assert sandbox.control.stats()["requests_total"] == 0
    (emf,) = batch_metrics(capsys.readouterr().out)
    assert emf["LedgerUnavailable"] == 3 and emf["RateSlotsUnavailable"] == 0


def test_with_the_template_defaults_a_missing_ledger_table_holds_only_the_reports(
    stack, sandbox, capsys, monkeypatch, log_lines
):
    """The unique property guards the payments, the ledger only the reports: payments go through,
    a bad message waits rather than be reported without knowing whether it was reported before."""
    monkeypatch.setenv("LEDGER_TABLE_NAME", "no-such-ledger-table")
    event = {
        "Records": [sqs_record(payment_body(f"k{i}"), f"m{i}") for i in range(3)] + [sqs_record("{", "bad")]
    }
    response = load_handler().lambda_handler(event, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert len(sandbox.control.payments()) == 3
    (emf,) = batch_metrics(capsys.readouterr().out)
    assert emf["LedgerUnavailable"] == 1 and emf["PaymentsCreated"] == 3 and emf["PaymentsRejected"] == 0
    [line] = [json.loads(x) for x in log_lines() if "ledger unavailable" in x]  # what the runbook names
    assert line["level"] == "ERROR" and line["error"] == "ledger statement failed (ResourceNotFound)"


def test_every_outage_is_held_from_the_configured_outage_hold(stack, monkeypatch):
    """HUBSPOT_UNAVAILABLE_HOLD_SECONDS is the base of every outage's hold (docs/configuration.md)."""
    from payments_drain.core.outcomes import Wait

    monkeypatch.setenv("HUBSPOT_UNAVAILABLE_HOLD_SECONDS", "123")
    bases = load_handler().DRAIN.holds.hold_base_s
    waits = (
        Wait.HUBSPOT_UNAVAILABLE,
        Wait.LEDGER_UNAVAILABLE,
        Wait.RATE_SLOTS_UNAVAILABLE,
        Wait.CONFIGURATION,
    )
    assert [bases[w] for w in waits] == [123] * 4


def _create_directly(sandbox, keys):
    """Payments HubSpot holds already (e.g. written by an earlier attempt), with the drain's key."""
    from payments_drain.adapters.hubspot import HubSpotClient
    from payments_drain.core.messages import parse_record

    payments = [parse_record(sqs_record(payment_body(k), f"pre-{k}"), "payments_drain_key") for k in keys]
    answer = HubSpotClient(sandbox.base_url).write_batch([p.hubspot_input() for p in payments], CANARY_TOKEN)
    assert answer.status == 201


@pytest.mark.parametrize("mode", ["create", "upsert"])
def test_an_answer_lost_after_hubspot_stored_the_chunk_is_read_back_not_sent_again(
    stack, sandbox, capsys, monkeypatch, mode
):
    monkeypatch.setenv("HUBSPOT_WRITE_MODE", mode)
    monkeypatch.setenv("HUBSPOT_READ_TIMEOUT_SECONDS", "1")
    sandbox.control.set_faults(script=["stored_then_timeout"], stored_then_timeout_delay_s=3)
    event = {"Records": [sqs_record(payment_body(f"ch_{i}"), f"m{i}") for i in range(100)]}
    assert load_handler().lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    stats = sandbox.control.stats()
    assert stats["payments_stored"] == 100 and stats["payments_updated"] == 0  # written once, not again
    assert stats["requests_by_route"] == {mode: 1, "read": 1}
    (emf,) = batch_metrics(capsys.readouterr().out)
    assert emf["PaymentsCreated"] == 100 and emf["PaymentsDuplicate"] == 0 and emf["HubSpotRequests"] == 2


def test_a_lost_answer_read_back_finds_a_property_sent_empty_held_without_a_value_and_settles_created(
    stack, sandbox, capsys, monkeypatch
):
    """HubSpot (and the sandbox) stores no value for a property written as "": the read-back finds
    the payment's record without it. That is this message's own create, not another message's
    (it was counted CREATED_BY_ANOTHER_MESSAGE)."""
    monkeypatch.setenv("HUBSPOT_READ_TIMEOUT_SECONDS", "1")
    sandbox.control.set_faults(script=["stored_then_timeout"], stored_then_timeout_delay_s=3)
    event = {
        "Records": [sqs_record(payment_body(f"ch_{i}", hs_internal_comment=""), f"m{i}") for i in range(3)]
    }
    assert load_handler().lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    stats = sandbox.control.stats()
    assert stats["payments_stored"] == 3 and stats["requests_by_route"] == {"create": 1, "read": 1}
    assert all("hs_internal_comment" not in p["properties"] for p in sandbox.control.payments())
    (emf,) = batch_metrics(capsys.readouterr().out)
    assert emf["PaymentsCreated"] == 3 and emf["PaymentsDuplicate"] == 0


def test_a_lost_answer_for_payments_created_before_their_message_reads_back_as_duplicates(
    stack, sandbox, capsys, monkeypatch
):
    """With the template's defaults the ledger claims no payment, so a later message of a payment
    HubSpot holds is sent (and refused); when that answer is lost, the read-back finds a record made
    before the message was sent: another message created it, a duplicate, not created by this one."""
    _create_directly(sandbox, ["ch_0", "ch_1"])
    time.sleep(0.05)  # the messages below are sent after those records were made
    monkeypatch.setenv("HUBSPOT_READ_TIMEOUT_SECONDS", "1")
    sandbox.control.set_faults(script=["stored_then_timeout"], stored_then_timeout_delay_s=3)
    event = {"Records": [sqs_record(payment_body(f"ch_{i}"), f"m{i}") for i in range(4)]}
    assert load_handler().lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    stats = sandbox.control.stats()
    assert stats["payments_stored"] == 4  # the drain's create (its answer lost) and its read back
    assert stats["requests_by_route"] == {"create": 1 + 1, "read": 1}  # + the one that made the first two
    (emf,) = batch_metrics(capsys.readouterr().out)
    assert emf["PaymentsCreated"] == 2 and emf["PaymentsDuplicate"] == 2


def test_a_read_back_sends_again_only_what_hubspot_does_not_hold(stack, sandbox, capsys):
    event = {"Records": [sqs_record(payment_body(f"ch_{i}"), f"m{i}") for i in range(100)]}
    time.sleep(0.05)  # sent before the earlier attempt below stored 40 of them
    _create_directly(sandbox, [f"ch_{i}" for i in range(40)])
    sandbox.control.set_faults(script=["reset"])  # the connection cut: maybe stored, here not
    assert load_handler().lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    stats = sandbox.control.stats()
    assert stats["payments_stored"] == 100
    assert stats["requests_by_route"] == {"create": 3, "read": 1}  # ours: the cut one, the read, the rest
    assert stats["inputs_received"] == 40 + 100 + 60  # the rest alone was sent again
    # Both creates answered 201 (none met an earlier copy); the read's 207 named the 60 not held.
    assert stats["requests_by_status"] == {"201": 2, "207": 1, "reset": 1}
    (emf,) = batch_metrics(capsys.readouterr().out)
    assert emf["PaymentsCreated"] == 100 and emf["PaymentsDuplicate"] == 0
