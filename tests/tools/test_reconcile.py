"""reconcile against the sandbox over loopback HTTP and the ledger on DynamoDB Local: a payment as
expected, a stale one, a missing one and one held twice; the ledger's time range; reading by the
ledger's ids without a unique property; retries; usage errors; the process and the function."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from payments_drain.adapters.hubspot import HubSpotClient
from payments_drain.adapters.ledger import DynamoLedger
from payments_drain.core.messages import parse_record
from payments_drain.core.outcomes import Payment
from payments_drain.tools.reconcile import main

from local.hubspot_sandbox import ALL_SCOPES
from tests.tools.test_replay import hubspot_report
from tests.twins import CANARY_TOKEN, LambdaContext, import_app, payment_body, sqs_record

ROOT = Path(__file__).resolve().parents[2]
KEY = "payments_drain_key"  # the template's default unique property


@pytest.fixture
def ledger_table(aws_env):
    table = f"ledger-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "paymentKey", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "paymentKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return table


@pytest.fixture
def sandbox(hubspot_sandbox, monkeypatch):
    hubspot_sandbox.control.set_config(
        tokens={CANARY_TOKEN: {"scopes": list(ALL_SCOPES)}}, unique_property=KEY
    )
    monkeypatch.setenv("HUBSPOT_TOKEN", CANARY_TOKEN)
    monkeypatch.setenv("HUBSPOT_BASE_URL", hubspot_sandbox.base_url)
    monkeypatch.setenv("HUBSPOT_UNIQUE_PROPERTY", KEY)
    for name in ("HUBSPOT_TOKEN_SECRET_ID", "LEDGER_TABLE_NAME", "HUBSPOT_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    return hubspot_sandbox


def lifecycle(key: str, version: int, status: str) -> dict:
    return {**payment_body(key, hs_latest_status=status), "version": version}


def create(sandbox, *bodies: dict, unique: str | None = KEY) -> dict[str, str]:
    """Created in HubSpot as the drain creates them (``unique`` None: without the key's property)."""
    payments = [parse_record(sqs_record(b, f"m-{uuid.uuid4().hex[:6]}"), unique) for b in bodies]
    assert all(isinstance(p, Payment) for p in payments)
    answer = HubSpotClient(sandbox.base_url).write_batch([p.hubspot_input() for p in payments], CANARY_TOKEN)
    assert answer.status == 201
    by_trace = {r["objectWriteTraceId"]: r["id"] for r in answer.body["results"]}
    return {p.payment_key: by_trace[p.message_id] for p in payments}


@pytest.fixture
def incident(sandbox, ledger_table, tmp_path):
    """ok: as expected. stale: HubSpot holds version 1 of a payment whose newest line is version 2.
    gone: reported, never created. dup: created with its key, and once more without it (as before
    the unique property existed), the ledger holding the second id. lost: the ledger says created."""
    ids = create(sandbox, payment_body("ok"), lifecycle("stale", 1, "processing"), payment_body("dup"))
    copy = create(sandbox, payment_body("dup"), unique=None)["dup"]
    DynamoLedger(ledger_table).record_created(
        {"ok": ids["ok"], "stale": ids["stale"], "dup": copy, "lost": "99"}
    )
    lines = [
        payment_body("ok"),
        lifecycle("stale", 1, "processing"),
        lifecycle("stale", 2, "refunded"),
        hubspot_report("m-gone", payment_body("gone", hs_latest_status="succeeded")),
        payment_body("dup"),
    ]
    path = tmp_path / "incident.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n", encoding="utf-8")
    return {"ids": ids, "copy": copy, "file": path, "table": ledger_table}


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    assert CANARY_TOKEN not in out.out + out.err
    lines = [json.loads(line) for line in out.out.splitlines()]
    return code, {f["paymentKey"]: f for f in lines[:-1]}, lines[-1]["summary"] if lines else None, out.err


def test_a_stale_a_missing_and_a_duplicated_payment_are_found_and_the_exit_code_says_so(incident, capsys):
    code, found, summary, err = run(
        capsys, "--file", str(incident["file"]), "--ledger-table", incident["table"]
    )
    assert code == 1
    ids = incident["ids"]
    assert found["ok"] == {
        "paymentKey": "ok",
        "status": "expected",
        "hubspotIds": [ids["ok"]],
        "ledgerHubspotId": ids["ok"],
    }
    assert found["stale"]["status"] == "stale" and found["stale"]["differs"] == ["hs_latest_status"]
    assert found["gone"] == {"paymentKey": "gone", "status": "missing", "hubspotIds": []}
    assert found["dup"]["status"] == "twice"
    assert found["dup"]["hubspotIds"] == sorted([ids["dup"], incident["copy"]])
    assert summary == {
        "payments": 4,
        "expected": 1,
        "stale": 1,
        "missing": 1,
        "twice": 1,
        "unread": 0,
        "hubspotRequests": 2,  # one read by the key for all four, one by the id the ledger holds for dup
        "problems": [],
    }
    assert err.splitlines() == ["reconcile: 4 payments: 1 as expected, 1 stale, 1 missing, 1 twice, 0 unread"]


def test_the_ledgers_time_range_names_the_payments_and_finds_the_one_hubspot_lost(incident, capsys):
    now = time.time()
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 60))
    until = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now + 60))
    code, found, summary, _ = run(
        capsys, "--since", since, "--until", until, "--ledger-table", incident["table"], "--quiet"
    )
    assert code == 1
    # The ledger knows keys, not values: the stale payment is present, as far as it can tell.
    assert {k: f["status"] for k, f in found.items()} == {
        "dup": "twice",
        "lost": "missing",
        "ok": "expected",
        "stale": "expected",
    }
    code, found, _, _ = run(
        capsys,
        "--since",
        "2026-01-01",
        "--until",
        "2026-01-02",
        "--ledger-table",
        incident["table"],
        "--payment-key",
        "ok",
    )
    assert code == 0 and list(found) == ["ok"]  # nothing created that day: the key given alone


def test_a_time_range_the_ledger_recorded_nothing_in_says_why_it_may_be_empty(incident, capsys):
    """With the template's defaults (create mode, unique property) the ledger claims no payment, so
    an operator's --since/--until found nothing and was told only "nothing to reconcile"."""
    with pytest.raises(SystemExit) as exit_:
        main(["--since", "2026-01-01", "--until", "2026-01-02", "--ledger-table", incident["table"]])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert "the ledger recorded no payment created between" in err
    assert "--file or --payment-key" in err


def test_without_a_unique_property_the_ledgers_ids_are_read_and_a_key_without_one_is_unread(incident, capsys):
    code, found, summary, _ = run(
        capsys,
        "--file",
        str(incident["file"]),
        "--ledger-table",
        incident["table"],
        "--unique-property",
        "",
    )
    assert code == 1  # stale: the record the ledger names holds the older state
    assert {k: f["status"] for k, f in found.items()} == {
        "ok": "expected",
        "stale": "stale",
        "gone": "unread",  # nothing recorded to read it by
        "dup": "expected",  # the ledger's record; only the key could show the other one
    }
    code, found, _, _ = run(capsys, "--payment-key", "gone", "--unique-property", "", "--quiet")
    assert code == 3 and found["gone"]["status"] == "unread"


def test_reads_are_sent_again_after_a_429_and_a_5xx_and_unread_after_five_failures(incident, sandbox, capsys):
    sandbox.control.set_faults(read_script=["429", "503"])
    code, found, summary, _ = run(capsys, "--payment-key", "ok", "--payment-key", "gone")
    assert code == 1 and found["ok"]["status"] == "expected" and found["gone"]["status"] == "missing"
    assert summary["hubspotRequests"] == 3
    sandbox.control.set_faults(read_script=["500"] * 5)
    code, found, summary, err = run(capsys, "--payment-key", "ok")
    assert code == 3 and found["ok"]["status"] == "unread"
    assert summary["hubspotRequests"] == 5
    assert summary["problems"] == ["HubSpot answered 500 INTERNAL_ERROR: Internal Server Error"]
    assert err.splitlines()[-1] == "reconcile: HubSpot answered 500 INTERNAL_ERROR: Internal Server Error"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "nothing to reconcile"),
        (["--since", "2026-11-01"], "since and until go together"),
        (
            ["--since", "2026-11-02", "--until", "2026-11-01", "--ledger-table", "t-1"],
            "since must be before until",
        ),
        (["--since", "2026-11-01", "--until", "2026-11-02"], "give --ledger-table"),
        (["--payment-key", "a b"], "--payment-key"),
        (["--payment-key", "a", "--unique-property", "Bad Name"], "--unique-property"),
        (["--payment-key", "a", "--base-url", "http://api.example.com"], "--base-url"),
        (["--payment-key", "a", "--api-version", "v2"], "--api-version"),
        (["--file", "no-such-file.jsonl"], "no-such-file.jsonl"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_a_command_line_mistake_is_one_line_and_exit_code_2(sandbox, capsys, argv, fragment):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out = capsys.readouterr()
    assert exit_.value.code == 2 and out.out == ""
    assert len(out.err.splitlines()) == 1 and fragment in out.err


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("{not json", "line 2: not valid JSON"),
        (
            json.dumps({"properties": {"hs_initial_amount": "1"}}),
            "line 2: neither a payment with a paymentKey",
        ),
    ],
)
def test_a_file_line_reconcile_cannot_use_is_a_usage_error_naming_it(
    sandbox, capsys, tmp_path, line, fragment
):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(payment_body("ok")) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["--file", str(path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and fragment in err


def test_no_token_is_a_usage_error(sandbox, capsys, monkeypatch):
    monkeypatch.delenv("HUBSPOT_TOKEN")
    with pytest.raises(SystemExit) as exit_:
        main(["--payment-key", "a"])
    assert exit_.value.code == 2 and "set HUBSPOT_TOKEN" in capsys.readouterr().err


def test_the_documented_command_runs_as_a_process(incident, sandbox, aws_env):
    """The module as a process, as `make reconcile` runs it (docs/tools.md, "Reconcile"), exit code 1 unmasked by make."""
    env = {**os.environ, "PYTHONPATH": "layers/shared", "LEDGER_TABLE_NAME": incident["table"]}
    done = subprocess.run(
        [sys.executable, "-m", "payments_drain.tools.reconcile", "--file", str(incident["file"])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    last = json.loads(done.stdout.splitlines()[-1])["summary"]
    assert (last["expected"], last["stale"], last["missing"], last["twice"]) == (1, 1, 1, 1)
    assert CANARY_TOKEN not in done.stdout + done.stderr


def test_the_function_reads_the_token_from_its_secret_and_returns_what_is_not_as_expected(
    incident, sandbox, monkeypatch
):
    secret = boto3.client("secretsmanager").create_secret(
        Name=f"reconcile-{uuid.uuid4().hex[:6]}", SecretString=json.dumps({"token": CANARY_TOKEN})
    )
    monkeypatch.setenv("HUBSPOT_TOKEN_SECRET_ID", secret["ARN"])
    monkeypatch.setenv("FAILURE_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/reports")
    monkeypatch.setenv("LEDGER_TABLE_NAME", incident["table"])
    monkeypatch.delenv("HUBSPOT_TOKEN")
    app = import_app(ROOT / "functions/reconcile/app.py")
    payments = [json.loads(line) for line in incident["file"].read_text().splitlines() if line]
    result = app.lambda_handler({"payments": payments, "paymentKey": ["lost"]}, LambdaContext())
    assert result["exitCode"] == 1
    assert {k: result["summary"][k] for k in ("expected", "stale", "missing", "twice", "unread")} == {
        "expected": 1,
        "stale": 1,
        "missing": 2,
        "twice": 1,
        "unread": 0,
    }
    assert sorted(f["paymentKey"] for f in result["findings"]) == ["dup", "gone", "lost", "stale"]
    assert CANARY_TOKEN not in json.dumps(result)
    with pytest.raises(ValueError, match="nothing to reconcile"):
        app.lambda_handler({}, LambdaContext())


def test_report_lines_are_read_as_the_payment_they_carry(sandbox, capsys, tmp_path):
    """A failure report of a payment HubSpot refused: the payment is looked for by its key."""
    create(sandbox, payment_body("k-1", hs_latest_status="failed"))
    report = hubspot_report("m-1", payment_body("k-1", hs_latest_status="failed"))
    path = tmp_path / "reports.jsonl"
    path.write_text(json.dumps(report) + "\n", encoding="utf-8")
    code, found, _, _ = run(capsys, "--file", str(path), "--quiet")
    assert code == 0 and found["k-1"]["status"] == "expected"
