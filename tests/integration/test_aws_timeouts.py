"""The AWS adapters give up on an endpoint that never answers within their bounded time (real
time, a loopback server that accepts and never answers, reached through AWS_ENDPOINT_URL)."""

import time

import pytest
from payments_drain.adapters.aws_clients import CONNECT_TIMEOUT_S, MAX_ATTEMPTS, READ_TIMEOUT_S
from payments_drain.adapters.ledger import DynamoLedger, LedgerUnavailable
from payments_drain.adapters.reports import SqsReporter
from payments_drain.adapters.token import SecretToken, TokenUnavailable

from tests.slow_http import SlowServer

SLACK_S = 3.0  # a loaded 2-core machine; botocore's defaults would take minutes
# Every attempt meets a timeout; botocore's standard mode waits at most 2**n s before retry n.
WORST_CALL_S = MAX_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + sum(
    2**n for n in range(MAX_ATTEMPTS - 1)
)


@pytest.fixture
def hanging_aws(aws_env, monkeypatch):
    with SlowServer("hang", give_up_s=90) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.base_url)
        monkeypatch.setenv(
            "AWS_ENDPOINT_URL_DYNAMODB", server.base_url
        )  # aws_env points it at DynamoDB Local
        yield server


def timed(call):
    started = time.monotonic()
    outcome = call()
    return outcome, time.monotonic() - started


def test_reports_to_an_sqs_that_never_answers_are_returned_unwritten_in_bounded_time(hanging_aws):
    reporter = SqsReporter(hanging_aws.base_url + "/123456789012/reports")
    report = {
        "messageId": "m1",
        "paymentKey": "k1",
        "payment": {},
        "reason": {"category": "X", "message": "y"},
    }
    failed, elapsed = timed(lambda: reporter.send([report]))
    assert failed == {"m1"}
    assert hanging_aws.requests == MAX_ATTEMPTS and elapsed < WORST_CALL_S + SLACK_S


def test_a_secrets_manager_that_never_answers_makes_the_token_unavailable_in_bounded_time(hanging_aws):
    def read():
        with pytest.raises(TokenUnavailable):
            SecretToken("arn:aws:secretsmanager:us-east-1:123456789012:secret:tok").get()

    _, elapsed = timed(read)
    assert hanging_aws.requests == MAX_ATTEMPTS and elapsed < WORST_CALL_S + SLACK_S


def test_a_dynamodb_that_never_answers_makes_the_ledger_unavailable_in_bounded_time(hanging_aws):
    def claim():
        with pytest.raises(LedgerUnavailable):
            DynamoLedger("ledger", parallelism=1).claim(["k1"], "req", int(time.time() * 1000) + 60_000)

    _, elapsed = timed(claim)
    assert hanging_aws.requests == MAX_ATTEMPTS and elapsed < WORST_CALL_S + SLACK_S


def test_a_dynamodb_that_never_answers_makes_the_rate_slots_unavailable_in_bounded_time(hanging_aws):
    from payments_drain.adapters.rate_slots import DynamoRateSlots, RateSlotsUnavailable

    def claim():
        with pytest.raises(RateSlotsUnavailable):
            now = int(time.time() * 1000)
            DynamoRateSlots("slots", 4).claim(1, now, now + 60_000)

    _, elapsed = timed(claim)
    assert hanging_aws.requests == MAX_ATTEMPTS and elapsed < WORST_CALL_S + SLACK_S


def test_after_a_read_that_timed_out_the_next_chunks_fail_at_once_not_each_after_the_same_wait(hanging_aws):
    """The invocation's chunks each ask for the token, one after another under its lock: with a
    Secrets Manager that hangs, each waited out the same timeouts (ten chunks of ~7 s outlasted the
    function). Now a read that failed is remembered for FAILED_READ_S: the next get raises the
    same error at once, with no request."""
    token = SecretToken("arn:aws:secretsmanager:us-east-1:123456789012:secret:tok")
    with pytest.raises(TokenUnavailable) as first:
        token.get()
    again, elapsed = timed(lambda: pytest.raises(TokenUnavailable, token.get))
    assert str(again.value) == str(first.value) and "tok" in str(first.value)
    assert hanging_aws.requests == MAX_ATTEMPTS and elapsed < 0.5
