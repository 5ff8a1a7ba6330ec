"""The replay tool against moto in server mode: real SQS calls, nothing patched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from payments_drain.adapters.reports import SqsReporter, report_of
from payments_drain.core.messages import parse_record
from payments_drain.core.outcomes import Payment, Reason, Rejection
from payments_drain.tools.replay import ReplayRequest, main, replay

from tests.tools.sqs_helpers import bodies, counts, new_queue, take_all
from tests.twins import LambdaContext, import_app, payment_body, sqs_record

ROOT = Path(__file__).resolve().parents[2]
FAST = {"wait_seconds": 0, "empty_receives": 1}  # moto answers a short poll with every visible message


def invalid_report(message_id: str, body, reported_at: str = "2026-11-27T10:00:00.000Z") -> dict:
    """A report as the drain writes it for a message that failed its own checks."""
    rejection = parse_record(sqs_record(body, message_id, receive_count=1))
    assert isinstance(rejection, Rejection)
    return {
        **report_of(rejection, "req-1", "arn:aws:sqs:us-east-1:123456789012:payments"),
        "reportedAt": reported_at,
    }


def hubspot_report(
    message_id: str, body: dict, code: str = "INVALID_OPTION", reported_at: str = "2026-11-27T10:00:00.000Z"
) -> dict:
    """A report as the drain writes it for a payment HubSpot refused (207, VALIDATION_ERROR)."""
    payment = parse_record(sqs_record(body, message_id))
    assert isinstance(payment, Payment)
    rejection = Rejection(
        payment.message,
        Reason("VALIDATION_ERROR", "Property values were not valid", 207, code, "corr-1"),
        payment.payment_key,
        body,
    )
    return {**report_of(rejection, "req-2"), "reportedAt": reported_at}


@pytest.fixture
def queues(aws_env):
    return new_queue("reports"), new_queue("payments")


def seed(url: str, reports: list[dict]) -> None:
    assert SqsReporter(url).send(reports) == set()


def mixed_reports() -> list[dict]:
    return [
        invalid_report("m-json", "{not json", "2026-11-01T08:00:00.000Z"),
        invalid_report("m-amount", payment_body("k-amount", amount="12,50"), "2026-11-02T08:00:00.000Z"),
        invalid_report("m-required", {"properties": {"hs_initial_amount": "1"}}, "2026-11-03T08:00:00.000Z"),
        hubspot_report(
            "m-option",
            payment_body("k-option", hs_latest_status="succeeded"),
            reported_at="2026-11-04T08:00:00.000Z",
        ),
        hubspot_report(
            "m-nokey",
            payment_body(None, amount="7.00"),
            code="INVALID_DATE",
            reported_at="2026-11-05T08:00:00.000Z",
        ),
    ]


def replayed_keys(url: str) -> set[str]:
    return {m["MessageAttributes"]["replayOf"]["StringValue"] for m in take_all(url)}


def test_dry_run_sends_nothing_and_leaves_every_report_visible(queues):
    reports_url, payments_url = queues
    seed(reports_url, mixed_reports())
    lines = []
    summary = replay(
        ReplayRequest(dry_run=True, show=2, **FAST), reports_url, payments_url, progress=lines.append
    )
    assert summary.matched == 5 and summary.replayed == 0 and summary.released == 5
    assert summary.by_category == {"INVALID_MESSAGE": 3, "VALIDATION_ERROR": 2}
    assert summary.by_code == {
        "INVALID_JSON": 1,
        "INVALID_DECIMAL": 1,
        "REQUIRED_PROPERTY": 1,
        "INVALID_OPTION": 1,
        "INVALID_DATE": 1,
    }
    assert len(summary.payment_keys) == 2
    assert counts(payments_url) == (0, 0)
    assert counts(reports_url) == (5, 0)  # not deleted, and released at once (visibility 0)
    assert any("would replay 5" in line for line in lines)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"category": ["VALIDATION_ERROR"]}, {"m-option", "m-nokey"}),
        ({"code": ["INVALID_DECIMAL", "INVALID_OPTION"]}, {"m-amount", "m-option"}),
        ({"category": ["INVALID_MESSAGE"], "code": ["INVALID_JSON"]}, {"m-json"}),
        ({"since": "2026-11-02T08:00:00Z", "until": "2026-11-04T08:00:00Z"}, {"m-amount", "m-required"}),
        ({"since": "2026-11-04T08:00:00"}, {"m-option", "m-nokey"}),  # no zone: UTC
        ({"payment_key": ["k-option", "m-json"]}, {"m-option", "m-json"}),
        ({"category": ["NO_SUCH_CATEGORY"]}, set()),
    ],
    ids=["category", "codes", "category-and-code", "time-range", "since-naive", "payment-keys", "none"],
)
def test_filters_replay_exactly_the_matching_reports(queues, filters, expected):
    reports_url, payments_url = queues
    seed(reports_url, mixed_reports())
    summary = replay(ReplayRequest(**filters, **FAST), reports_url, payments_url)
    assert summary.replayed == len(expected) and summary.not_matching == 5 - len(expected)
    assert replayed_keys(payments_url) == expected
    assert counts(reports_url) == (5 - len(expected), 0)  # the rest released untouched
    left = {r["messageId"] for r in bodies(reports_url)}
    assert left == {"m-json", "m-amount", "m-required", "m-option", "m-nokey"} - expected


def test_replayed_bodies_are_the_originals_and_reports_are_deleted(queues):
    reports_url, payments_url = queues
    reports = mixed_reports()
    seed(reports_url, reports)
    summary = replay(ReplayRequest(**FAST), reports_url, payments_url)
    assert summary.replayed == 5 and summary.send_failed == 0 and summary.stopped_by == "drained"
    assert counts(reports_url) == (0, 0)
    sent = {m["MessageAttributes"]["replayOf"]["StringValue"]: m["Body"] for m in take_all(payments_url)}
    assert sent["m-json"] == "{not json"  # the raw string, as it came
    assert json.loads(sent["m-amount"]) == payment_body("k-amount", amount="12,50")
    assert json.loads(sent["m-option"]) == payment_body("k-option", hs_latest_status="succeeded")
    # Bodies without a paymentKey were known by their messageId: they keep that key.
    assert json.loads(sent["m-required"]) == {
        "properties": {"hs_initial_amount": "1"},
        "paymentKey": "m-required",
    }
    assert json.loads(sent["m-nokey"]) == {**payment_body(None, amount="7.00"), "paymentKey": "m-nokey"}


def test_a_replayed_payment_keeps_the_ledger_key_it_was_reported_under(queues):
    reports_url, payments_url = queues
    report = hubspot_report("orig-msg-1", payment_body(None))
    seed(reports_url, [report])
    replay(ReplayRequest(**FAST), reports_url, payments_url)
    [message] = take_all(payments_url)
    parsed = parse_record(
        sqs_record(message["Body"], message["MessageId"]), unique_property="hs_reference_number"
    )
    assert isinstance(parsed, Payment)
    assert message["MessageId"] != "orig-msg-1"
    assert parsed.payment_key == report["paymentKey"] == "orig-msg-1"
    assert parsed.properties["hs_reference_number"] == "orig-msg-1"


def test_a_failed_send_leaves_every_report(queues, aws_env):
    reports_url, _ = queues
    seed(reports_url, mixed_reports())
    missing = aws_env + "/123456789012/no-such-payments-queue"
    summary = replay(ReplayRequest(**FAST), reports_url, missing)
    assert summary.send_failed == 5 and summary.replayed == 0
    assert (
        "QueueDoesNotExist" in summary.errors[0]["error"] or "NonExistentQueue" in summary.errors[0]["error"]
    )
    assert counts(reports_url) == (5, 0)
    assert {r["messageId"] for r in bodies(reports_url)} == {
        "m-json",
        "m-amount",
        "m-required",
        "m-option",
        "m-nokey",
    }


def test_limit_replays_that_many_and_releases_the_rest(queues):
    reports_url, payments_url = queues
    seed(reports_url, [invalid_report(f"m{i}", payment_body(f"k{i}", amount="x")) for i in range(25)])
    summary = replay(ReplayRequest(limit=12, **FAST), reports_url, payments_url)
    assert summary.replayed == 12 and summary.stopped_by == "limit"
    assert counts(payments_url) == (12, 0)
    assert counts(reports_url) == (13, 0)


def test_unreadable_messages_on_the_report_queue_are_left_alone(queues):
    reports_url, payments_url = queues
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=reports_url, MessageBody="not a report")
    sqs.send_message(QueueUrl=reports_url, MessageBody=json.dumps({"messageId": "m1", "reason": {}}))
    seed(reports_url, [invalid_report("m-ok", payment_body("k-ok", amount="x"))])
    summary = replay(ReplayRequest(**FAST), reports_url, payments_url)
    assert (summary.unreadable, summary.replayed) == (2, 1)
    assert replayed_keys(payments_url) == {"m-ok"}
    assert {m["Body"] for m in take_all(reports_url)} == {
        "not a report",
        json.dumps({"messageId": "m1", "reason": {}}),
    }


def test_replay_to_a_fifo_queue_sets_group_and_deduplication_ids(aws_env):
    reports_url, payments_url = new_queue("reports"), new_queue("payments", fifo=True)
    seed(
        reports_url,
        [invalid_report("m1", payment_body("k1", amount="x")), invalid_report("m2", {"properties": {}})],
    )
    assert replay(ReplayRequest(**FAST), reports_url, payments_url).replayed == 2
    got = {m["MessageAttributes"]["replayOf"]["StringValue"]: m["Attributes"] for m in take_all(payments_url)}
    assert got["m1"]["MessageGroupId"] == "k1" and got["m2"]["MessageGroupId"] == "m2"
    assert got["m1"]["MessageDeduplicationId"] == "replay-m1"


# --- the command line -------------------------------------------------------------------------------


def test_cli_exit_code_and_summary(queues, aws_env, capsys):
    reports_url, _ = queues
    seed(reports_url, mixed_reports()[:2])
    code = main(
        [
            "--failure-queue-url",
            reports_url,
            "--payments-queue-url",
            aws_env + "/123456789012/nope",
            "--wait-seconds",
            "0",
        ]
    )
    out = capsys.readouterr()
    assert code == 1
    assert json.loads(out.out)["sendFailed"] == 2
    assert "send failed 2" in out.err
    assert counts(reports_url) == (2, 0)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--since", "yesterday"], "--since"),
        (["--since", "2026-11-02", "--until", "2026-11-01"], "since must be before until"),
        (["--limit", "0"], "--limit"),
        (["--payment-key", ""], "--payment-key"),
    ],
)
def test_cli_refuses_bad_options_and_touches_nothing(queues, capsys, flags, named):
    reports_url, payments_url = queues
    seed(reports_url, mixed_reports()[:1])
    with pytest.raises(SystemExit) as exit_:
        main(["--failure-queue-url", reports_url, "--payments-queue-url", payments_url, *flags])
    assert exit_.value.code == 2
    assert named in capsys.readouterr().err
    assert counts(reports_url) == (1, 0) and counts(payments_url) == (0, 0)


@pytest.mark.parametrize(
    "flags",
    [
        ["--category", "VALIDATON_ERROR"],
        ["--category", "VALIDATION_ERROR", "--code", "INVALID_JSON"],
        ["--payment-key", "k-none"],
    ],
)
def test_cli_says_when_no_report_has_the_category_or_code(queues, capsys, flags):
    reports_url, payments_url = queues
    seed(reports_url, mixed_reports())
    code = main(
        [
            "--failure-queue-url",
            reports_url,
            "--payments-queue-url",
            payments_url,
            "--quiet",
            "--wait-seconds",
            "0",
            *flags,
        ]
    )
    out = capsys.readouterr()
    assert code == 2 and json.loads(out.out)["matched"] == 0
    assert out.err.splitlines() == [
        f"replay: no failure report matches {' '.join(flags)} (5 reports read, "
        "0 unreadable); nothing was replayed"
    ]
    assert counts(reports_url) == (5, 0) and counts(payments_url) == (0, 0)


def test_python_dash_m_replay_with_queue_urls_from_the_environment(queues):
    reports_url, payments_url = queues
    seed(reports_url, mixed_reports())
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers/shared"),
        "FAILURE_QUEUE_URL": reports_url,
        "PAYMENTS_QUEUE_URL": payments_url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "payments_drain.tools.replay", "--code", "INVALID_JSON"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["replayed"] == 1
    assert "read 5 reports" in result.stderr
    assert replayed_keys(payments_url) == {"m-json"}


# --- the Lambda handler -----------------------------------------------------------------------------


def replay_context(**kwargs) -> LambdaContext:
    return LambdaContext(
        **{
            "function_name": "payments-drain-replay",
            "memory_limit_in_mb": 256,
            "aws_request_id": "req-replay",
            "remaining_ms": 900_000,
            **kwargs,
        }
    )


def load_handler():
    return import_app(ROOT / "functions/replay/app.py")


@pytest.fixture
def handler_env(queues, monkeypatch):
    reports_url, payments_url = queues
    monkeypatch.setenv("FAILURE_QUEUE_URL", reports_url)
    monkeypatch.setenv("PAYMENTS_QUEUE_URL", payments_url)
    seed(reports_url, mixed_reports())
    return queues


def test_handler_returns_the_summary(handler_env):
    reports_url, payments_url = handler_env
    handler = load_handler().lambda_handler
    dry = handler({"dryRun": True, "category": "VALIDATION_ERROR", "waitSeconds": 0}, replay_context())
    assert (dry["dryRun"], dry["matched"], dry["replayed"]) == (True, 2, 0)
    assert counts(payments_url) == (0, 0) and counts(reports_url) == (5, 0)
    done = handler(
        {
            "dryRun": False,
            "category": "VALIDATION_ERROR",
            "code": ["INVALID_DATE"],
            "limit": 100,
            "since": "2026-11-01T00:00:00Z",
            "until": "2026-12-01T00:00:00Z",
            "waitSeconds": 0,
        },
        replay_context(),
    )
    assert (done["replayed"], done["notMatching"], done["stoppedBy"]) == (1, 4, "drained")
    assert done["paymentKeys"] == ["m-nokey"]
    assert replayed_keys(payments_url) == {"m-nokey"}
    assert counts(reports_url) == (4, 0)


@pytest.mark.parametrize(
    "event", [{}, {"dryRun": "yes"}, {"dryRun": False, "catgory": "X"}, {"dryRun": False, "limit": 0}]
)
def test_handler_refuses_an_event_it_cannot_trust(handler_env, event):
    reports_url, payments_url = handler_env
    with pytest.raises(ValueError):
        load_handler().lambda_handler(event, replay_context())
    assert counts(payments_url) == (0, 0) and counts(reports_url) == (5, 0)


def test_handler_stops_before_its_time_runs_out(handler_env):
    reports_url, payments_url = handler_env
    summary = load_handler().lambda_handler({"dryRun": False}, replay_context(remaining_ms=24_000))
    assert summary["stoppedBy"] == "time" and summary["replayed"] == 0
    assert counts(payments_url) == (0, 0) and counts(reports_url) == (5, 0)


def test_a_run_longer_than_the_visibility_timeout_reads_each_report_once(queues):
    reports_url, payments_url = queues
    seed(reports_url, mixed_reports())
    # Held reports reappear after 1 s while the run still long-polls: counted once, released once.
    summary = replay(
        ReplayRequest(dry_run=True, visibility_timeout=1, wait_seconds=2, empty_receives=2),
        reports_url,
        payments_url,
    )
    assert (summary.received, summary.matched, summary.released) == (5, 5, 5)
    assert summary.stopped_by == "drained"
    assert counts(reports_url) == (5, 0) and counts(payments_url) == (0, 0)
