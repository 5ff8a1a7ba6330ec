"""The orchestration with in-memory twins: each step-4 failure mode, the ledger, the reports."""

import json
import threading
import time

import pytest
from payments_drain.core.batching import Answer
from payments_drain.core.holds import backoff_hold_s
from payments_drain.core.outcomes import State, Wait
from payments_drain.orchestration.drain import Budget, Drain
from payments_drain.orchestration.pacing import DailyLimit, RateGate

from tests.twins import (
    CANARY_TOKEN,
    InMemoryLedger,
    InMemoryReporter,
    InMemoryVisibility,
    ScriptedHubSpot,
    StaticToken,
    created,
    error_answer,
    linked,
    payment_body,
    sqs_record,
    validation_error,
)


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


def make(
    script=(), *, ledger=None, reporter=None, token=None, unique=None, clock=None, parallel_calls=2, **kw
):
    clock = clock or FakeClock()
    hubspot = ScriptedHubSpot(script)
    drain = Drain(
        hubspot,
        token or StaticToken(),
        ledger,
        reporter or InMemoryReporter(),
        unique_property=unique,
        parallel_calls=parallel_calls,
        gate=kw.pop("gate", RateGate(190, clock=clock)),
        daily=kw.pop("daily", DailyLimit(300, clock=clock)),
        sleep=clock.sleep,
        **kw,
    )
    return drain, hubspot


def run(drain, records, clock=None, seconds=60.0):
    clock = clock or FakeClock()
    return drain.run(records, Budget(clock.now + seconds, clock), "req-1", "arn:aws:sqs:us-east-1:1:payments")


def records(n, prefix="m", start=0):
    return [
        sqs_record(payment_body(f"key-{prefix}{i}", amount=str(i + 1)), f"{prefix}{i}")
        for i in range(start, start + n)
    ]


def failures(result):
    return [f["itemIdentifier"] for f in result.response["batchItemFailures"]]


def test_all_valid_are_created_in_one_call_per_100(clock):
    drain, hubspot = make(clock=clock)
    result = run(drain, records(250), clock)
    assert failures(result) == []
    assert result.counts()["created"] == 250
    assert sorted(len(c[0]) for c in hubspot.calls) == [50, 100, 100]
    assert all(token == CANARY_TOKEN for _, token in hubspot.calls)


def test_mixed_batch_rejects_and_reports_bad_messages_without_spending_a_request(clock):
    reporter = InMemoryReporter()
    drain, hubspot = make(reporter=reporter, clock=clock)
    batch = records(3) + [
        sqs_record("{oops", "bad-1"),
        sqs_record(payment_body("k", amount="x"), "bad-2", receive_count=2),
    ]
    result = run(drain, batch, clock)
    assert failures(result) == []
    assert len(hubspot.calls) == 1 and len(hubspot.calls[0][0]) == 3
    reports = {r["messageId"]: r for r in reporter.sent}
    assert set(reports) == {"bad-1", "bad-2"}
    assert reports["bad-1"]["payment"] == "{oops" and reports["bad-1"]["reason"]["code"] == "INVALID_JSON"
    assert reports["bad-2"]["payment"]["paymentKey"] == "k" and reports["bad-2"]["receiveCount"] == 2
    for report in reports.values():
        assert {"messageId", "paymentKey", "reason", "payment", "receiveCount", "reportedAt"} <= set(report)


def test_207_validation_errors_are_reported_others_retried(clock):
    reporter = InMemoryReporter()
    internal = {
        "status": "error",
        "category": "INTERNAL_ERROR",
        "message": "x",
        "context": {"objectWriteTraceId": ["m2"]},
    }
    drain, _ = make(
        [lambda inputs: created(inputs, 207, [validation_error("m1", "PROPERTY_DOESNT_EXIST"), internal])],
        reporter=reporter,
        clock=clock,
    )
    result = run(drain, records(4), clock)
    assert failures(result) == ["m2"]
    assert [r["messageId"] for r in reporter.sent] == ["m1"]
    assert reporter.sent[0]["reason"]["code"] == "PROPERTY_DOESNT_EXIST"
    assert reporter.sent[0]["payment"]["paymentKey"] == "key-m1"


def test_whole_400_is_narrowed_to_the_culprit_by_splitting(clock):
    def hubspot_400_if_culprit(inputs):
        if any(i["objectWriteTraceId"] == "m5" for i in inputs):
            return error_answer(400, "VALIDATION_ERROR", errors=[{"code": "INVALID_INTEGER", "message": "x"}])
        return created(inputs)

    reporter = InMemoryReporter()
    drain, hubspot = make([hubspot_400_if_culprit] * 20, reporter=reporter, clock=clock)
    result = run(drain, records(8), clock)
    assert failures(result) == []
    assert result.counts() == {"created": 7, "duplicate": 0, "rejected": 1, "retry": 0}
    assert [r["messageId"] for r in reporter.sent] == ["m5"]
    assert len(hubspot.calls) == 7  # 8 -> 4+4 -> 2+2 -> 1+1: log2 depth, not one call per payment


def test_401_reads_the_token_again_past_the_cache_and_resends_once(clock):
    token = StaticToken(["old-token", CANARY_TOKEN])
    drain, hubspot = make([error_answer(401, "EXPIRED_AUTHENTICATION")], token=token, clock=clock)
    result = run(drain, records(2), clock)
    assert failures(result) == []
    assert [t for _, t in hubspot.calls] == ["old-token", CANARY_TOKEN]
    assert token.forced == 1


def test_401_twice_retries_every_payment(clock):
    drain, hubspot = make([error_answer(401, "INVALID_AUTHENTICATION")] * 2, clock=clock)
    result = run(drain, records(3), clock)
    assert failures(result) == ["m0", "m1", "m2"]
    assert len(hubspot.calls) == 2
    assert result.stats.auth_failures == 2


def test_403_missing_scope_retries_without_resending(clock):
    drain, hubspot = make([error_answer(403, "MISSING_SCOPES")], clock=clock)
    result = run(drain, records(3), clock)
    assert failures(result) == ["m0", "m1", "m2"] and len(hubspot.calls) == 1
    assert result.outcomes["m0"].reason.category == "MISSING_SCOPES"


def test_429_waits_as_told_then_succeeds(clock):
    drain, hubspot = make(
        [error_answer(429, headers={"Retry-After": "2"}, policyName="TEN_SECONDLY_ROLLING")], clock=clock
    )
    result = run(drain, records(2), clock)
    assert failures(result) == [] and len(hubspot.calls) == 2
    assert max(clock.slept) >= 2.0
    assert result.stats.throttled == 1


def test_429_that_cannot_be_waited_for_in_the_budget_is_retried(clock):
    drain, hubspot = make(
        [error_answer(429, headers={"Retry-After": "30"}, policyName="TEN_SECONDLY_ROLLING")], clock=clock
    )
    result = run(drain, records(2), clock, seconds=10)
    assert failures(result) == ["m0", "m1"] and len(hubspot.calls) == 1


def test_daily_limit_stops_all_sending_for_the_invocation(clock):
    drain, hubspot = make([error_answer(429, policyName="DAILY")] + [created] * 5, clock=clock)
    result = run(drain, records(300), clock)
    assert result.stats.daily_limit
    assert len(failures(result)) + result.counts()["created"] == 300
    assert len(hubspot.calls) <= 2  # at most the calls already in flight (2 parallel)


def test_the_container_remembers_a_spent_daily_limit_and_probes_once_in_a_while(clock):
    visibility = InMemoryVisibility()
    drain, hubspot = make(
        [error_answer(429, policyName="DAILY")] * 2 + [created] * 3,
        clock=clock,
        parallel_calls=1,
        visibility=visibility,
    )
    assert failures(run(drain, records(2), clock)) == ["m0", "m1"] and len(hubspot.calls) == 1
    clock.now += 60  # the next invocations, a minute later: no call, no 429 spent on asking again
    later = run(drain, records(3, prefix="n"), clock)
    assert failures(later) == ["n0", "n1", "n2"] and len(hubspot.calls) == 1
    assert {o.wait for o in later.outcomes.values()} == {Wait.DAILY_LIMIT}
    clock.now += 300  # the probe is due: one call asks, still spent
    assert failures(run(drain, records(1, prefix="p"), clock)) == ["p0"] and len(hubspot.calls) == 2
    clock.now += 301  # the next probe finds the limit reset: sending resumes
    assert failures(run(drain, records(2, prefix="q"), clock)) == [] and len(hubspot.calls) == 3


def test_a_call_that_leaves_no_daily_request_stops_sending_before_the_429(clock):
    def last(inputs):  # the day's last request: 201, and no request left
        return Answer(201, created(inputs).body, {"X-HubSpot-RateLimit-Daily-Remaining": "0"})

    drain, hubspot = make([last], clock=clock, parallel_calls=1)
    result = run(drain, records(150), clock)
    assert result.counts()["created"] == 100 and len(hubspot.calls) == 1
    assert result.stats.daily_limit and len(failures(result)) == 50


def test_retries_that_only_wait_for_hubspot_are_held_on_the_queue_until_it_can_take_them(clock):
    visibility = InMemoryVisibility()
    drain, _ = make(
        [error_answer(503)] * 3 + [error_answer(429, policyName="DAILY")] + [error_answer(403)],
        clock=clock,
        parallel_calls=1,
        visibility=visibility,
    )
    batch = [sqs_record(payment_body("k0"), "m0", receive_count=3)]
    assert failures(run(drain, batch, clock)) == ["m0"]
    assert visibility.held == {"rh-m0": 600 * 4}  # HubSpot down: 10 min, doubled at each delivery
    assert visibility.queue_arns == {"arn:aws:sqs:us-east-1:1:payments"}
    run(drain, [sqs_record(payment_body("k1"), "m1", receive_count=1)], clock)
    assert visibility.held["rh-m1"] == 7200  # daily limit: two hours at first
    clock.now += 1000
    run(drain, [sqs_record(payment_body("k2"), "m2")], clock)  # 403: a configuration fault, not a wait
    assert "rh-m2" not in visibility.held


def test_holds_outlast_a_one_hour_outage_and_a_whole_spent_day_within_the_default_receive_count():
    max_receive_count = 5  # template.yaml's default: the fifth failed delivery goes to the DLQ
    held = lambda base: sum(min(backoff_hold_s(base, n), 43_000) for n in range(1, max_receive_count))  # noqa: E731
    assert held(600) >= 3600 and held(7200) >= 24 * 3600  # even with every hold clamped below 12 h
    assert backoff_hold_s(3, 12) == 48  # redelivered often for other reasons: not hidden for hours at first


def test_each_chunk_is_recorded_in_the_ledger_as_soon_as_it_settles(clock):
    ledger = InMemoryLedger()
    seen_by_second_call = {}

    def second(inputs):
        seen_by_second_call.update({k: v["status"] for k, v in ledger.items.items()})
        return created(inputs)

    drain, _ = make([created, second], ledger=ledger, clock=clock, parallel_calls=1)
    run(drain, records(150), clock)
    assert [seen_by_second_call[f"key-m{i}"] for i in range(100)] == [
        "created"
    ] * 100  # a kill now loses none
    assert {seen_by_second_call[f"key-m{i}"] for i in range(100, 150)} == {"claimed"}


def test_an_error_after_hubspot_may_have_stored_a_chunk_keeps_it_ambiguous_not_released(clock):
    ledger = InMemoryLedger()

    def stored_then_crashed(inputs):
        raise RuntimeError("bug after the request left")

    drain, _ = make([stored_then_crashed], ledger=ledger, clock=clock)
    assert failures(run(drain, records(2), clock)) == ["m0", "m1"]
    assert {ledger.items[k]["status"] for k in ("key-m0", "key-m1")} == {"ambiguous"}
    again = run(drain, records(2), clock)  # the redelivery: counted as possibly sent twice
    assert failures(again) == [] and again.stats.ambiguous == 2


def test_a_finished_invocation_leaves_no_live_claim_so_a_redelivery_is_handled_at_once(clock):
    ledger = InMemoryLedger()
    drain, hubspot = make([Answer(None, error="timeout")] * 3, ledger=ledger, clock=clock)
    assert failures(run(drain, records(1), clock)) == ["m0"]
    assert ledger.items["key-m0"]["status"] == "ambiguous"
    again = drain.run(records(1), Budget(clock.now + 60, clock), "req-2", "arn:aws:sqs:us-east-1:1:payments")
    assert failures(again) == [] and again.outcomes["m0"].state is State.CREATED  # not CLAIMED_ELSEWHERE


@pytest.mark.parametrize(
    "failure",
    [
        error_answer(500),
        error_answer(502),
        error_answer(503),
        error_answer(504),
        error_answer(423),
        error_answer(477, headers={"Retry-After": "1"}),
        Answer(None, error="timeout"),
        Answer(None, error="connect"),
        Answer(None, error="protocol"),
    ],
)
def test_transient_failures_are_retried_with_backoff_then_succeed(clock, failure):
    drain, hubspot = make([failure, failure], clock=clock)
    result = run(drain, records(2), clock)
    assert failures(result) == [] and len(hubspot.calls) == 3
    assert len(clock.slept) == 2 and clock.slept[1] >= clock.slept[0] >= 0.5  # backoff grows


def test_transient_failures_are_bounded_then_retried_via_sqs(clock):
    drain, hubspot = make([error_answer(503)] * 10, clock=clock, max_attempts=3)
    result = run(drain, records(2), clock)
    assert failures(result) == ["m0", "m1"] and len(hubspot.calls) == 3
    assert result.stats.ambiguous == 6  # each 5xx may have stored the two payments


def test_no_call_starts_when_the_budget_is_spent(clock):
    drain, hubspot = make(clock=clock)
    result = run(drain, records(3), clock, seconds=0.5)
    assert failures(result) == ["m0", "m1", "m2"] and hubspot.calls == []
    assert result.outcomes["m0"].reason.category == "TIME_BUDGET"


def test_token_unavailable_retries_everything_and_never_calls(clock):
    drain, hubspot = make(token=StaticToken(fail=True), clock=clock)
    result = run(drain, records(2) + [sqs_record("{", "bad")], clock)
    assert failures(result) == ["m0", "m1"] and hubspot.calls == []


def test_ledger_settles_created_keys_as_duplicates_without_sending(clock):
    ledger = InMemoryLedger()
    drain, hubspot = make(ledger=ledger, clock=clock)
    first = run(drain, records(3), clock)
    assert first.counts()["created"] == 3 and ledger.items["key-m0"]["status"] == "created"
    redelivered = run(drain, records(3) + records(1, start=3), clock)
    assert redelivered.counts() == {"created": 1, "duplicate": 3, "rejected": 0, "retry": 0}
    assert [len(c[0]) for c in hubspot.calls] == [3, 1]
    assert redelivered.outcomes["m0"].hubspot_id == first.outcomes["m0"].hubspot_id


def test_ledger_claim_held_by_another_invocation_is_retried(clock):
    ledger = InMemoryLedger()
    ledger.claim(["key-m0"], "other-request", until_ms=10**15)
    drain, hubspot = make(ledger=ledger, clock=clock)
    result = run(drain, records(2), clock)
    assert failures(result) == ["m0"] and [len(c[0]) for c in hubspot.calls] == [1]


def test_ledger_unreachable_means_retry_never_unprotected_sends(clock):
    drain, hubspot = make(ledger=InMemoryLedger(fail=True), clock=clock)
    result = run(drain, records(2), clock)
    assert failures(result) == ["m0", "m1"] and hubspot.calls == []


def test_report_not_written_turns_into_a_retry(clock):
    drain, _ = make(reporter=InMemoryReporter(fail_ids=["bad-1"]), clock=clock)
    result = run(drain, records(1) + [sqs_record("{", "bad-1"), sqs_record("{", "bad-2")], clock)
    assert failures(result) == ["bad-1"]
    broken, _ = make(reporter=InMemoryReporter(fail_all=True), clock=clock)
    assert failures(run(broken, [sqs_record("{", "bad-3")], clock)) == ["bad-3"]


def test_a_repeated_payment_key_is_sent_once_and_its_twins_take_its_outcome_at_once(clock):
    reporter = InMemoryReporter()
    script = [
        lambda inputs: created(
            inputs,
            207,
            [
                validation_error(i["objectWriteTraceId"])
                for i in inputs
                if i["properties"]["hs_initial_amount"] == "9.99"
            ],
        )
    ]
    drain, hubspot = make(script, reporter=reporter, clock=clock, parallel_calls=1)
    batch = [
        sqs_record(payment_body("same"), "m0"),
        sqs_record(payment_body("same"), "m1"),
        sqs_record(payment_body("bad", amount="9.99"), "m2"),
        sqs_record(payment_body("bad", amount="9.99"), "m3"),
    ]
    result = run(drain, batch, clock)
    assert failures(result) == [] and [len(c[0]) for c in hubspot.calls] == [2]
    assert result.outcomes["m0"].state is State.DUPLICATE  # the later copy was the one sent
    assert result.outcomes["m0"].hubspot_id == result.outcomes["m1"].hubspot_id is not None
    assert result.outcomes["m3"] == result.outcomes["m2"] and result.outcomes["m3"].state is State.REJECTED
    assert sorted(r["messageId"] for r in reporter.sent) == [
        "m2",
        "m3",
    ]  # each rejected message has its report


def test_twins_of_a_retried_payment_are_retried_with_it(clock):
    drain, _ = make([error_answer(403, "MISSING_SCOPES")], clock=clock)
    batch = [sqs_record(payment_body("same"), "m0"), sqs_record(payment_body("same"), "m1")]
    assert failures(run(drain, batch, clock)) == ["m0", "m1"]


def test_fifo_rejection_after_a_retry_in_its_group_is_not_reported_yet(clock):
    reporter = InMemoryReporter()
    drain, _ = make(
        [
            lambda inputs: created(
                inputs,
                207,
                [
                    {
                        "status": "error",
                        "category": "INTERNAL",
                        "message": "x",
                        "context": {"objectWriteTraceId": ["f0"]},
                    }
                ],
            )
        ],
        reporter=reporter,
        clock=clock,
    )
    batch = [
        sqs_record(payment_body("a"), "f0", group_id="g1"),
        sqs_record("{", "f1", group_id="g1"),
        sqs_record(payment_body("b"), "f2", group_id="g2"),
        sqs_record(payment_body("c"), "f3", group_id="g1"),
    ]
    result = run(drain, batch, clock)
    assert failures(result) == ["f0", "f1", "f3"]
    assert reporter.sent == []
    assert result.outcomes["f2"].state is State.CREATED


def test_canary_token_never_reaches_logs_reports_or_outcomes(clock, log_lines):
    reporter = InMemoryReporter()
    script = [error_answer(401), error_answer(401), lambda i: created(i, 207, [validation_error("m1")])]
    drain, _ = make(script, reporter=reporter, clock=clock)
    first = run(drain, records(2), clock)
    second = run(drain, records(2) + [sqs_record("{", "bad")], clock)
    text = "\n".join(log_lines()) + json.dumps(reporter.sent) + repr(first) + repr(second)
    assert "payment rejected" in text and "HubSpot rejected the token" in text  # the logs were captured
    assert CANARY_TOKEN not in text


def test_a_redelivered_rejection_is_not_reported_twice(clock):
    reporter = InMemoryReporter()
    drain, _ = make(ledger=InMemoryLedger(), reporter=reporter, clock=clock)
    assert failures(run(drain, [sqs_record("{", "bad-1")], clock)) == []
    again = run(drain, [sqs_record("{", "bad-1", receive_count=2)], clock)
    assert failures(again) == [] and again.outcomes["bad-1"].state is State.REJECTED
    assert [r["messageId"] for r in reporter.sent] == ["bad-1"]


def test_with_the_unique_property_in_create_mode_the_ledger_keeps_only_the_written_reports(clock):
    """HubSpot refuses a second create of a key its unique property holds, also after an answer that
    never came (which a claim cannot cover): payment claims would cost DynamoDB writes for nothing.
    The ledger still keeps a redelivered bad message from being reported twice."""
    ledger, reporter = InMemoryLedger(), InMemoryReporter()
    conflict = lambda inputs: created(  # noqa: E731 - HubSpot refusing every input as a duplicate of its own
        inputs,
        207,
        [
            {
                "status": "error",
                "category": "CONFLICT",
                "message": "Existing ID: 9",
                "context": {"objectWriteTraceId": [i["objectWriteTraceId"]]},
            }
            for i in inputs
        ],
    )
    drain, hubspot = make(
        [created, conflict], ledger=ledger, reporter=reporter, unique="payments_drain_key", clock=clock
    )
    batch = records(3) + [sqs_record("{", "bad-1")]
    assert failures(run(drain, batch, clock)) == []
    assert set(ledger.items) == {"report bad-1"}  # no payment claimed or recorded
    again = run(drain, records(3) + [sqs_record("{", "bad-1", receive_count=2)], clock)
    assert again.counts() == {"created": 0, "duplicate": 3, "rejected": 1, "retry": 0}
    assert [len(c[0]) for c in hubspot.calls] == [3, 3]  # HubSpot, not the ledger, refused the copies
    assert [r["messageId"] for r in reporter.sent] == ["bad-1"]  # reported once


@pytest.mark.parametrize("unique, upsert", [(None, False), ("payments_drain_key", True)])
def test_without_the_unique_property_or_in_upsert_mode_the_ledger_claims_every_payment(clock, unique, upsert):
    ledger = InMemoryLedger()
    drain, hubspot = make(ledger=ledger, unique=unique, upsert=upsert, clock=clock)
    assert failures(run(drain, records(3), clock)) == []
    assert {k: v["status"] for k, v in ledger.items.items()} == {f"key-m{i}": "created" for i in range(3)}


def test_claims_of_payments_surely_not_stored_are_released_and_others_kept(clock):
    ledger = InMemoryLedger()
    script = [
        error_answer(429, headers={"Retry-After": "30"}, policyName="TEN_SECONDLY_ROLLING"),
        error_answer(503),
    ]
    drain, _ = make(script, ledger=ledger, clock=clock)
    run(drain, records(1, prefix="a"), clock, seconds=10)  # throttled, never stored: claim released
    assert "key-a0" not in ledger.items
    drain2, _ = make([error_answer(503)] * 3, ledger=ledger, clock=clock)
    result = run(drain2, records(1, prefix="b"), clock)  # 5xx: maybe stored, claim marked ambiguous
    assert (
        result.stats.ambiguous == 3 and ledger.items["key-b0"]["status"] == "ambiguous"
    )  # three 5xx answers


def test_a_payment_whose_claim_expired_unreleased_counts_as_ambiguous(clock):
    ledger = InMemoryLedger()
    ledger.claim(["key-m0"], "crashed-request", until_ms=1)  # expired long ago, never released
    drain, hubspot = make(ledger=ledger, clock=clock)
    result = run(drain, records(2), clock)
    assert failures(result) == [] and len(hubspot.calls[0][0]) == 2
    assert result.stats.ambiguous == 1


def test_429s_are_waited_out_within_the_budget_not_counted_as_attempts(clock):
    throttled = error_answer(429, policyName="TEN_SECONDLY_ROLLING")
    drain, hubspot = make([throttled] * 5, clock=clock, max_attempts=2)
    result = run(drain, records(2), clock)
    assert failures(result) == [] and len(hubspot.calls) == 6


# --- upsert mode ----------------------------------------------------------------------------------


def upserted(existing: set[str]):
    """batch/upsert's 200: each result says whether the id was new (HubSpot's `new`)."""

    def answer(inputs):
        body = created(inputs, 200).body
        for result, item in zip(body["results"], reversed(inputs)):
            result["new"] = item["id"] not in existing
            existing.add(item["id"])
        return Answer(200, body, {})

    return answer


def versioned(key, message_id, version, status="succeeded", **kw):
    body = payment_body(key, hs_latest_status=status)
    if version is not None:
        body["version"] = version
    return sqs_record(body, message_id, **kw)


def test_upsert_mode_writes_by_the_unique_property_and_counts_updates(clock):
    existing = {"k1"}
    drain, hubspot = make([upserted(existing)], unique="payments_drain_key", upsert=True, clock=clock)
    result = run(drain, [versioned("k1", "m1", None, "refunded"), versioned("k2", "m2", None)], clock)
    assert failures(result) == [] and result.counts()["created"] == 2 and result.updated() == 1
    sent = {i["id"]: i for i in hubspot.calls[0][0]}
    assert sent["k1"] == {
        "id": "k1",
        "idProperty": "payments_drain_key",
        "objectWriteTraceId": "m1",
        "properties": {**payment_body("k1", hs_latest_status="refunded")["properties"]},
    }


def test_upsert_mode_with_the_ledger_applies_newer_versions_and_refuses_older_ones_unsent(clock):
    ledger = InMemoryLedger()
    drain, hubspot = make(
        [upserted(set())] * 3, ledger=ledger, unique="payments_drain_key", upsert=True, clock=clock
    )
    assert failures(run(drain, [versioned("k", "m5", 5)], clock)) == [] and ledger.items["k"]["version"] == 5
    late = run(drain, [versioned("k", "m4", 4, "processing")], clock)  # an older update delivered late
    assert (
        late.outcomes["m4"].state is State.DUPLICATE
        and late.outcomes["m4"].reason.category == "STALE_VERSION"
    )
    assert late.stale() == 1 and len(hubspot.calls) == 1  # no request spent on it
    newer = run(drain, [versioned("k", "m7", 7, "refunded")], clock)
    assert newer.updated() == 1 and ledger.items["k"]["version"] == 7 and len(hubspot.calls) == 2


def test_upsert_mode_sends_the_newest_of_a_key_twice_in_a_batch(clock):
    drain, hubspot = make([upserted(set())], unique="payments_drain_key", upsert=True, clock=clock)
    result = run(
        drain, [versioned("k", "m1", 1), versioned("k", "m3", 3, "refunded"), versioned("k", "m2", 2)], clock
    )
    assert failures(result) == [] and [i["objectWriteTraceId"] for i in hubspot.calls[0][0]] == ["m3"]
    assert {m: result.outcomes[m].reason.category for m in ("m1", "m2")} == {
        "m1": "STALE_VERSION",
        "m2": "STALE_VERSION",
    }


def test_upsert_mode_without_the_ledger_lets_the_last_write_win(clock):
    drain, hubspot = make([upserted(set())] * 2, unique="payments_drain_key", upsert=True, clock=clock)
    run(drain, [versioned("k", "m5", 5)], clock)
    late = run(drain, [versioned("k", "m4", 4)], clock)
    assert late.outcomes["m4"].state is State.CREATED and len(hubspot.calls) == 2  # no ledger, no order


def linked_to(*targets, version=1, message_id="m0", key="k"):
    """An upsert message linked to (object type, id, type id) targets."""
    body = payment_body(key)
    body["version"] = version
    body["associations"] = [
        {"to": {"id": to_id}, "types": [{"associationCategory": category, "associationTypeId": type_id}]}
        | ({"toObjectType": to_type} if category != "HUBSPOT_DEFINED" else {})
        for to_type, to_id, type_id, category in targets
    ]
    return sqs_record(body, message_id)


CONTACT = ("contacts", "501", 387, "HUBSPOT_DEFINED")
DEAL = ("deals", "601", 391, "HUBSPOT_DEFINED")


def test_upsert_mode_links_each_written_payment_by_its_new_id_one_call_per_target_type(clock):
    ledger = InMemoryLedger()
    drain, hubspot = make(
        [upserted(set())], ledger=ledger, unique="payments_drain_key", upsert=True, clock=clock
    )
    label = ("contacts", "502", 4, "USER_DEFINED")
    batch = [linked_to(CONTACT, DEAL, message_id="m0", key="k0"), linked_to(label, message_id="m1", key="k1")]
    result = run(drain, batch, clock)
    assert failures(result) == [] and result.counts()["created"] == 2 and result.stats.links == 3
    ids = {r["objectWriteTraceId"]: r["id"] for r in created(hubspot.calls[0][0]).body["results"]}
    calls = {to_type: inputs for to_type, inputs in hubspot.link_calls}
    assert sorted(calls) == ["contacts", "deals"] and result.stats.requests == 3
    assert {
        (i["from"]["id"], i["to"]["id"], i["types"][0]["associationTypeId"]) for i in calls["contacts"]
    } == {
        (ids["m0"], "501", 387),
        (ids["m1"], "502", 4),
    }
    assert all("toObjectType" not in i for i in calls["contacts"])  # the drain's field stays home
    assert all("linksPending" not in item for item in ledger.items.values())


def test_a_link_that_fails_after_its_record_was_written_is_retried_for_the_link_only(clock):
    ledger = InMemoryLedger()
    drain, hubspot = make(
        [upserted(set())], ledger=ledger, unique="payments_drain_key", upsert=True, clock=clock
    )
    hubspot.link_script = [error_answer(503, "SERVICE_UNAVAILABLE")] * 3
    first = run(drain, [linked_to(CONTACT)], clock)
    outcome = first.outcomes["m0"]
    assert failures(first) == ["m0"] and outcome.reason.category == "LINKS_PENDING"
    assert outcome.wait is Wait.HUBSPOT_UNAVAILABLE and outcome.record_written
    hubspot_id = ledger.items["k"]["hubspotId"]
    assert ledger.items["k"]["version"] == 1 and ledger.items["k"]["linksPending"] is True
    assert len(hubspot.calls) == 1 and len(hubspot.link_calls) == 3

    again = run(drain, [linked_to(CONTACT)], clock)  # the same message, redelivered
    assert failures(again) == [] and again.outcomes["m0"].state is State.CREATED
    assert len(hubspot.calls) == 1  # never upserted again: the record is not written twice
    assert hubspot.link_calls[-1] == (
        "contacts",
        [
            {
                "from": {"id": hubspot_id},
                "to": {"id": "501"},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}],
            }
        ],
    )
    assert "linksPending" not in ledger.items["k"] and again.stats.links == 1
    late = run(drain, [linked_to(CONTACT)], clock)  # once linked, a copy is a stale duplicate
    assert late.outcomes["m0"].reason.category == "STALE_VERSION" and len(hubspot.link_calls) == 4


def test_a_newer_version_while_links_are_pending_is_upserted_and_linked_the_older_is_stale(clock):
    ledger = InMemoryLedger()
    drain, hubspot = make(
        [upserted(set())] * 2, ledger=ledger, unique="payments_drain_key", upsert=True, clock=clock
    )
    hubspot.link_script = [error_answer(503, "SERVICE_UNAVAILABLE")] * 3
    assert failures(run(drain, [linked_to(CONTACT, version=1, message_id="m1")], clock)) == ["m1"]
    newer = run(drain, [linked_to(CONTACT, version=2, message_id="m2")], clock)
    assert failures(newer) == [] and len(hubspot.calls) == 2 and ledger.items["k"]["version"] == 2
    older = run(drain, [linked_to(CONTACT, version=1, message_id="m1")], clock)
    assert older.outcomes["m1"].reason.category == "STALE_VERSION" and len(hubspot.calls) == 2


def test_a_link_hubspot_refuses_for_good_is_reported_with_its_own_code_and_the_record_kept(clock):
    reporter, ledger = InMemoryReporter(), InMemoryLedger()
    drain, hubspot = make(
        [upserted(set())],
        ledger=ledger,
        reporter=reporter,
        unique="payments_drain_key",
        upsert=True,
        clock=clock,
    )
    missing = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "subCategory": "crm.associations.INVALID_OBJECT_IDS",
        "message": "One or more associations are invalid",
        "context": {"INVALID_OBJECT_IDS": ["CONTACT=501 is not valid"]},
    }
    hubspot.link_script = [lambda inputs: linked(inputs, 200, [missing])]
    result = run(drain, [linked_to(CONTACT, DEAL)], clock)
    outcome = result.outcomes["m0"]
    assert failures(result) == [] and outcome.state is State.REJECTED and outcome.record_written
    assert (outcome.reason.category, outcome.reason.code) == ("LINK_REJECTED", "LINK_TARGET_NOT_FOUND")
    [report] = reporter.sent
    assert (
        report["reason"]["code"] == "LINK_TARGET_NOT_FOUND"
        and "One or more associations" in report["reason"]["message"]
    )
    assert result.stats.links == 1  # the deal's link was written
    assert ledger.items["k"]["version"] == 1 and ledger.items["k"]["linksPending"] is True

    fixed = json.loads(linked_to(("contacts", "502", 387, "HUBSPOT_DEFINED"), DEAL)["body"])
    replayed = run(drain, [sqs_record(fixed, "m9")], clock)  # the report replayed, its contact fixed
    assert replayed.outcomes["m9"].state is State.CREATED and len(hubspot.calls) == 1  # links alone
    assert sorted(i["to"]["id"] for _, inputs in hubspot.link_calls[2:] for i in inputs) == ["502", "601"]
    assert "linksPending" not in ledger.items["k"]


def test_link_calls_are_counted_in_the_calls_announced_to_the_gate(clock):
    announced = []

    class Gate(RateGate):
        def begin(self, function_deadline_ms, calls):
            announced.append(calls)

    drain, hubspot = make(
        [upserted(set())], unique="payments_drain_key", upsert=True, clock=clock, gate=Gate(190, clock=clock)
    )
    run(drain, [linked_to(CONTACT, DEAL)], clock)
    assert announced == [3] and len(hubspot.calls) + len(hubspot.link_calls) == 3


def test_upsert_mode_reports_an_association_whose_target_type_it_cannot_tell(clock):
    reporter = InMemoryReporter()
    drain, hubspot = make(unique="payments_drain_key", upsert=True, reporter=reporter, clock=clock)
    body = payment_body("k")
    body["associations"] = [
        {"to": {"id": "1"}, "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": 4}]}
    ]
    result = run(drain, [sqs_record(body, "m0")], clock)
    assert result.outcomes["m0"].state is State.REJECTED and hubspot.calls == []
    assert reporter.sent[0]["reason"]["code"] == "ASSOCIATION_TARGET_UNKNOWN"


def test_a_rule_refusal_named_in_a_whole_request_400_rejects_that_payment_and_writes_the_others(
    clock, log_lines
):
    reporter = InMemoryReporter()
    rule = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "Some inputs break this account's rules",
        "correlationId": "c-1",
        "errors": [
            {
                "message": "hs_reference_number is required when hs_latest_status is refunded",
                "code": "CONDITIONAL_REQUIRED_PROPERTY",
                "context": {"objectWriteTraceId": ["m1"]},
            }
        ],
    }
    drain, hubspot = make([Answer(400, rule, {}), created], reporter=reporter, clock=clock)
    body = payment_body("key-m1", hs_customer_email="jane@example.com")
    result = run(drain, [*records(1), sqs_record(body, "m1"), *records(1, start=2)], clock)
    assert failures(result) == [] and result.counts()["created"] == 2
    assert [sorted(i["objectWriteTraceId"] for i in inputs) for inputs, _ in hubspot.calls] == [
        ["m0", "m1", "m2"],
        ["m0", "m2"],  # at once without it: no halving
    ]
    [report] = reporter.sent
    assert report["reason"]["code"] == "CONDITIONAL_REQUIRED_PROPERTY"
    assert report["reason"]["message"] == "hs_reference_number is required when hs_latest_status is refunded"
    assert not any("jane@example.com" in line for line in log_lines())


def test_upsert_mode_does_not_count_a_resent_payment_as_a_possible_copy(clock):
    ledger = InMemoryLedger()
    drain, _ = make(
        [Answer(None, error="timeout")] * 3 + [upserted(set())],
        ledger=ledger,
        unique="payments_drain_key",
        upsert=True,
        clock=clock,
    )
    first = run(drain, [versioned("k", "m1", 1)], clock)
    assert failures(first) == ["m1"] and first.stats.ambiguous == 0
    again = run(drain, [versioned("k", "m1", 1)], clock)
    assert failures(again) == [] and again.stats.ambiguous == 0


def test_an_unknown_object_type_is_logged_as_a_configuration_fault_and_retried_unsplit(clock, log_lines):
    answer = error_answer(
        400, "VALIDATION_ERROR", message="Unable to infer object type from: commerce_payment"
    )
    drain, hubspot = make([answer], clock=clock)
    assert failures(run(drain, records(3), clock)) == ["m0", "m1", "m2"] and len(hubspot.calls) == 1
    assert any(
        "configuration fault" in line and '"httpStatus":400' in line.replace(" ", "") for line in log_lines()
    )


def test_reports_of_messages_refused_before_any_request_are_written_before_hubspot_is_called(clock):
    reporter = InMemoryReporter()
    seen_at_call = []

    def call(inputs):
        seen_at_call.extend(r["messageId"] for r in reporter.sent)
        return created(inputs)

    drain, _ = make([call], ledger=InMemoryLedger(), reporter=reporter, clock=clock)
    result = run(drain, records(2) + [sqs_record("{", "bad-1")], clock)
    assert failures(result) == [] and seen_at_call == ["bad-1"]  # not left for the end of the budget


def test_a_rejection_waits_on_the_queue_while_the_ledger_cannot_say_whether_it_was_reported(clock):
    reporter = InMemoryReporter()
    drain, _ = make(ledger=InMemoryLedger(fail=True), reporter=reporter, clock=clock)
    result = run(drain, [sqs_record("{", "bad-1")], clock)
    assert failures(result) == ["bad-1"] and reporter.sent == []  # never reported twice, never lost
    assert result.outcomes["bad-1"].reason.category == "LEDGER_UNAVAILABLE"


def test_in_create_mode_a_twin_with_an_older_version_is_a_plain_duplicate_not_stale(clock):
    drain, _ = make(clock=clock)
    result = run(drain, [versioned("k", "m3", 3), versioned("k", "m1", 1)], clock)
    assert result.outcomes["m1"].reason.category == "SUPERSEDED_IN_BATCH" and result.stale() == 0


@pytest.mark.parametrize("hung", [0, 1])
def test_a_chunk_that_does_not_settle_before_the_answer_goes_back_whole_the_others_keep_theirs(
    clock, log_lines, hung
):
    """The invocation answers when its time to answer ends, whichever chunk hangs: that chunk's
    payments are retried (they have no outcome from it), the chunk that settled meanwhile keeps
    its outcomes, and one error line says so."""
    release = threading.Event()
    first = {0: "m0", 1: "m100"}[hung]

    def call(inputs):
        if inputs[0]["objectWriteTraceId"] == first:
            release.wait(30)  # a call (or the ledger write after it) that hangs past the answer
        return created(inputs)

    gate = RateGate(190, parallel_calls=2, clock=clock)  # both calls at once
    drain, hubspot = make([call, call], clock=clock, parallel_calls=2, gate=gate)
    # 1.5 s left on the fake clock (the calls fit), 1.2 s of real time to answer (less FINAL_S)
    started = time.monotonic()
    try:
        result = drain.run(records(150), Budget(clock.now + 1.5, clock), "req-1", "arn:aws:sqs:us-east-1:1:q")
    finally:
        release.set()
    assert time.monotonic() - started < 10
    hung_ids = [f"m{i}" for i in (range(100) if hung == 0 else range(100, 150))]
    assert failures(result) == hung_ids
    assert len(hubspot.calls) == 2
    states = {m: o.state for m, o in result.outcomes.items()}
    assert states == {f"m{i}": State.RETRY if f"m{i}" in hung_ids else State.CREATED for i in range(150)}
    assert sum("did not settle before the invocation had to answer" in line for line in log_lines()) == 1
    # a standard queue: the reason is the time, not a FIFO group (it read FIFO_GROUP_BLOCKED before)
    assert {result.outcomes[m].reason.category for m in hung_ids} == {"TIME_BUDGET"}
