"""The drain at the edges (issue 21): copies of one payment in a batch, holds that SQS would refuse,
holds past retention, retries that wait on an outage, answers that cannot be read."""

import json
import time

import pytest
from payments_drain.core.batching import Answer, settle
from payments_drain.core.holds import RECEIVE_MARGIN_S, RETENTION_MARGIN_S, QueueTimes
from payments_drain.core.limits import SQS_MAX_VISIBILITY_S
from payments_drain.core.messages import parse_record
from payments_drain.core.outcomes import State, Wait
from payments_drain.core.reading import applied, read_of
from payments_drain.orchestration.drain import Budget, Drain
from payments_drain.orchestration.pacing import BUSY_S, DailyLimit, RateGate

from tests.twins import (
    InMemoryLedger,
    InMemoryReporter,
    InMemoryVisibility,
    ScriptedHubSpot,
    StaticToken,
    error_answer,
    payment_body,
    sqs_record,
)

ARN = "arn:aws:sqs:us-east-1:123456789012:payments"
DAY_MS = 86_400_000


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def make(script=(), *, upsert=False, unique=None, ledger=None, times=None, clock=None, **kw):
    clock = clock or Clock()
    hubspot = ScriptedHubSpot(script)
    visibility = InMemoryVisibility()
    reporter = InMemoryReporter()
    drain = Drain(
        hubspot,
        StaticToken(),
        ledger,
        reporter,
        visibility=visibility,
        unique_property=unique or ("payment_key" if upsert else None),
        upsert=upsert,
        parallel_calls=1,
        gate=RateGate(190, clock=clock),
        daily=kw.pop("daily", None) or DailyLimit(300, clock=clock),
        sleep=clock.sleep,
        queue_times=times or QueueTimes(),
        **kw,
    )
    return drain, hubspot, visibility, reporter


def run(drain, records, seconds=60.0, clock=None):
    clock = clock or Clock()
    return drain.run(records, Budget(clock.now + seconds, clock), "req-1", ARN)


def failures(result):
    return [f["itemIdentifier"] for f in result.response["batchItemFailures"]]


# -- 1. copies of one payment in one batch ---------------------------------------------------------
def _copy(message_id, amount, sent_ms, version=None, group=None):
    body = payment_body("ch_1", amount=amount)
    if version is not None:
        body["version"] = version
    return sqs_record(body, message_id, group_id=group, sent_ms=sent_ms)


@pytest.mark.parametrize("upsert", [False, True])
def test_of_two_copies_the_latest_sent_is_applied_and_the_earlier_settled_with_a_reason(upsert):
    now = int(time.time() * 1000)
    # A standard queue delivers in any order: the corrected resend (sent later) comes first here.
    records = [_copy("new", "20.00", now - 1_000), _copy("old", "10.00", now - 5_000)]
    drain, hubspot, _, _ = make(upsert=upsert)
    result = run(drain, records)
    ((inputs, _),) = hubspot.calls
    assert [i["properties"]["hs_initial_amount"] for i in inputs] == ["20.00"]
    assert result.outcomes["new"].state is State.CREATED
    assert result.outcomes["old"].state is State.DUPLICATE
    assert result.outcomes["old"].reason.category == "SUPERSEDED_IN_BATCH"
    assert failures(result) == []


def test_of_two_fifo_copies_the_last_in_queue_order_is_applied():
    now = int(time.time() * 1000)
    records = [_copy("first", "10.00", now, group="g"), _copy("second", "20.00", now, group="g")]
    drain, hubspot, _, _ = make(upsert=True)
    result = run(drain, records)
    ((inputs, _),) = hubspot.calls
    assert [i["properties"]["hs_initial_amount"] for i in inputs] == ["20.00"]
    assert result.outcomes["first"].reason.category == "SUPERSEDED_IN_BATCH"


def test_the_highest_version_wins_over_the_latest_sent():
    now = int(time.time() * 1000)
    records = [_copy("v3", "30.00", now - 9_000, version=3), _copy("v2", "20.00", now, version=2)]
    drain, hubspot, _, _ = make(upsert=True)
    result = run(drain, records)
    ((inputs, _),) = hubspot.calls
    assert [i["properties"]["hs_initial_amount"] for i in inputs] == ["30.00"]
    assert result.outcomes["v2"].reason.category == "STALE_VERSION"


# -- 2. holds that SQS would refuse ----------------------------------------------------------------
def _unavailable():
    return [error_answer(503, "INTERNAL_ERROR")] * 10


def test_a_hold_never_asks_sqs_for_more_than_12_hours_from_the_receive():
    """The daily limit's hold at the 4th delivery is 7,200 x 8 = 57,600 s: past SQS's cap, which
    counts from the receive (docs/limits.md), so it must be clamped, not sent and refused."""
    daily = error_answer(429, "RATE_LIMIT", policyName="DAILY")
    drain, _, visibility, _ = make([daily], times=QueueTimes(batching_window_s=5))
    record = sqs_record(payment_body("ch_1"), "m1", receive_count=4)
    started = time.time()
    result = run(drain, [record])
    assert result.outcomes["m1"].wait is Wait.DAILY_LIMIT
    (held,) = visibility.held.values()
    elapsed = time.time() - started + 5 + RECEIVE_MARGIN_S  # since the earliest possible receive
    assert 0 < held <= SQS_MAX_VISIBILITY_S.value - elapsed - RECEIVE_MARGIN_S + 1


def test_a_hold_at_the_first_receive_counts_from_that_receive():
    daily = error_answer(429, "RATE_LIMIT", policyName="DAILY")
    drain, _, visibility, _ = make([daily])
    # Received 11 h ago (it waited in a batching window, or in a long backlog): 1 h is left of the
    # 12 h, less than the daily limit's first hold of 2 h.
    eleven_hours_ago = int(time.time() * 1000) - 39_600_000
    record = sqs_record(payment_body("ch_1"), "m1", receive_count=1, sent_ms=eleven_hours_ago)
    run(drain, [record])
    (held,) = visibility.held.values()
    assert 0 < held <= SQS_MAX_VISIBILITY_S.value - 39_600 - RECEIVE_MARGIN_S


def test_a_spent_day_met_after_a_short_wait_makes_up_the_deliveries_that_wait_took():
    """The simulated week, seed 60577: a spent day's 2 h hold, then a 20-minute hold on the rate
    slots table; at the 3rd delivery the day's backoff (8 h) and the 12 h before the last delivery
    reached 22.3 h from the first receive, short of the day's 26 h, and the payment was
    dead-lettered before the day reset. The hold now makes up the difference."""
    daily = error_answer(429, "RATE_LIMIT", policyName="DAILY")
    times = QueueTimes(max_receive_count=5)
    drain, _, visibility, _ = make([daily], times=times)
    first_received = int(time.time() * 1000) - 8_400_000  # 2 h 20 min ago
    record = sqs_record(payment_body("ch_1"), "m1", receive_count=3, sent_ms=first_received - 100)
    run(drain, [record])
    (held,) = visibility.held.values()
    longest = SQS_MAX_VISIBILITY_S.value - 2 * RECEIVE_MARGIN_S  # the 4th delivery's hold, at most
    covered = 8_400 + held + longest
    assert covered >= (7_200 + 14_400 + 28_800) + longest - 2  # the day's promise, from the first receive
    assert held < SQS_MAX_VISIBILITY_S.value


# -- 3. holds past retention -----------------------------------------------------------------------
def test_a_retry_that_would_outlive_the_queue_retention_is_reported_instead():
    times = QueueTimes(visibility_timeout_s=370, retention_s=14 * 86_400)
    drain, _, visibility, reporter = make(_unavailable(), times=times)
    sent = int(time.time() * 1000) - 14 * DAY_MS + (RETENTION_MARGIN_S + 60) * 1000
    record = sqs_record(payment_body("ch_1"), "m1", receive_count=3, sent_ms=sent)
    result = run(drain, [record])
    assert failures(result) == []
    assert result.outcomes["m1"].state is State.REJECTED
    assert result.outcomes["m1"].reason.category == "RETENTION_EXPIRING"
    (report,) = reporter.sent
    assert report["messageId"] == "m1" and report["reason"]["category"] == "RETENTION_EXPIRING"
    assert report["paymentKey"] == "ch_1"
    assert visibility.held == {}


def test_a_hold_is_shortened_to_come_back_before_the_retention_ends():
    times = QueueTimes(visibility_timeout_s=370, retention_s=14 * 86_400)
    drain, _, visibility, reporter = make(_unavailable(), times=times)
    left_s = RETENTION_MARGIN_S + 370 + 1_000  # 1,000 s of room: less than the 600 x 4 s hold
    sent = int(time.time() * 1000) - 14 * DAY_MS + left_s * 1000
    record = sqs_record(payment_body("ch_1"), "m1", receive_count=3, sent_ms=sent)
    result = run(drain, [record])
    assert failures(result) == ["m1"] and reporter.sent == []
    (held,) = visibility.held.values()
    assert 900 <= held <= 1_000


# -- 4. retries that wait on an outage are held; each as long as its reason needs -------------------
def test_chunks_never_sent_because_hubspot_was_down_all_along_are_held_too():
    clock = Clock()
    records = [sqs_record(payment_body(f"ch_{i}"), f"m{i}") for i in range(150)]  # two chunks

    def slow_503(inputs):  # the first call takes the whole budget: the second chunk is never sent
        clock.sleep(5.5)
        return error_answer(503, "INTERNAL_ERROR")

    drain, hubspot, visibility, _ = make([slow_503], clock=clock, max_attempts=10)
    result = run(drain, records, seconds=6.0, clock=clock)
    assert len(hubspot.calls) == 1
    assert len(failures(result)) == 150
    assert all(o.wait is Wait.HUBSPOT_UNAVAILABLE for o in result.outcomes.values())
    assert len(visibility.held) == 150


def test_payments_retried_because_the_ledger_is_down_are_held():
    drain, _, visibility, _ = make(ledger=InMemoryLedger(fail=True))
    result = run(drain, [sqs_record(payment_body("ch_1"), "m1")])
    assert result.outcomes["m1"].reason.category == "LEDGER_UNAVAILABLE"
    assert result.outcomes["m1"].wait is Wait.LEDGER_UNAVAILABLE
    assert list(visibility.held.values()) == [600]


def test_a_payment_claimed_elsewhere_is_held_until_that_claim_ends_not_a_whole_visibility_timeout():
    ledger = InMemoryLedger()
    until = int(time.time() * 1000) + 40_000
    ledger.claim(["ch_1"], "other-invocation", until)
    clock = Clock()
    drain, _, visibility, _ = make(ledger=ledger, clock=clock)
    result = run(drain, [sqs_record(payment_body("ch_1"), "m1")], clock=clock)
    assert result.outcomes["m1"].reason.category == "CLAIMED_ELSEWHERE"
    assert clock.now >= 60 - 10 - 2  # it claimed again every 2 s while it had time
    (held,) = visibility.held.values()
    assert 40 <= held <= 46


# -- 8. answers that cannot be read ----------------------------------------------------------------
def _payments(n=2):
    return [parse_record(sqs_record(payment_body(f"ch_{i}"), f"m{i}")) for i in range(n)]


@pytest.mark.parametrize(
    "body",
    [
        {"status": "COMPLETE", "results": [{"id": "1", "objectWriteTraceId": ["m0"]}]},
        {"status": "COMPLETE", "results": [{"id": "1", "objectWriteTraceId": {"a": 1}}], "numErrors": 1},
        {"status": "COMPLETE", "results": "m0,m1"},
        ["m0", "m1"],
        "<html>ok</html>",
    ],
)
@pytest.mark.parametrize("status", [200, 201, 207])
def test_a_2xx_that_cannot_be_read_settles_with_its_own_reason_and_never_raises(status, body):
    # With a unique property a resend is safe and proves what HubSpot holds: sent again, maybe stored.
    verdict = settle(_payments(), Answer(status, body), "payment_key")
    assert verdict.action == "transient" and verdict.ambiguous
    assert verdict.reason.category == "HUBSPOT_UNREADABLE_ANSWER"


def test_an_unreadable_answer_is_counted_in_the_batch_stats():
    body = {"results": [{"id": "1", "objectWriteTraceId": ["m1"]}]}
    drain, _, _, _ = make([Answer(201, body)], unique="payment_key")
    result = run(drain, [sqs_record(payment_body("ch_1"), "m1")])
    assert result.outcomes["m1"].state is State.CREATED  # the resend's answer could be read
    assert result.stats.unreadable == 1


def test_an_http_client_error_before_sending_is_not_ambiguous():
    verdict = settle(_payments(), Answer(None, error="client"))
    assert not verdict.ambiguous


def test_a_report_body_is_json_with_the_retention_reason():
    times = QueueTimes(retention_s=4 * 86_400)
    drain, _, _, reporter = make(_unavailable(), times=times)
    sent = int(time.time() * 1000) - 4 * DAY_MS + 60_000
    run(drain, [sqs_record(payment_body("ch_9"), "m9", sent_ms=sent)])
    (report,) = reporter.sent
    assert json.loads(json.dumps(report))["paymentKey"] == "ch_9"


def test_a_payment_another_invocation_was_sending_is_claimed_again_once_that_one_ends():
    """A copy of the payment in another batch held the claim; it ends while this invocation still
    has time: the payment settles here as a duplicate instead of spending a delivery on the wait."""
    ledger = InMemoryLedger()
    clock = Clock()
    ledger.claim(["ch_1"], "other-invocation", int(time.time() * 1000) + 40_000)

    def other_one_finishes(seconds):
        clock.now += seconds
        ledger.record_created({"ch_1": "777"})

    drain, hubspot, visibility, _ = make(ledger=ledger, clock=clock)
    drain.sender.sleep = other_one_finishes
    result = run(drain, [sqs_record(payment_body("ch_1"), "m1")], clock=clock)
    assert result.outcomes["m1"].state is State.DUPLICATE and result.outcomes["m1"].hubspot_id == "777"
    assert failures(result) == [] and hubspot.calls == [] and visibility.held == {}


def test_a_fifo_rejection_whose_report_waits_on_the_ledger_is_held_like_any_ledger_wait():
    """FIFO reports are written after the sends, in group order: a ledger that cannot say whether
    the report was written makes the message a retry after the holds were planned."""
    drain, _, visibility, reporter = make(ledger=InMemoryLedger(fail=True))
    result = run(drain, [sqs_record('{"properties": 1}', "m1", group_id="g")])
    assert result.outcomes["m1"].reason.category == "LEDGER_UNAVAILABLE" and reporter.sent == []
    assert list(visibility.held.values()) == [600]


def test_a_retry_whose_hold_would_be_shortened_to_nothing_is_reported_not_sent_back_at_once():
    times = QueueTimes(visibility_timeout_s=370, retention_s=86_400)
    drain, _, visibility, reporter = make(_unavailable(), times=times)
    sent = int(time.time() * 1000) - (86_400 - RETENTION_MARGIN_S - 370 - 20) * 1000  # 20 s of room
    result = run(drain, [sqs_record(payment_body("ch_1"), "m1", receive_count=2, sent_ms=sent)])
    assert result.outcomes["m1"].reason.category == "RETENTION_EXPIRING" and visibility.held == {}


def test_a_payment_at_its_last_delivery_is_resent_for_as_long_as_the_budget_allows():
    """Its next failure sends it to the dead-letter queue: max_attempts (3) does not stop it."""
    clock = Clock()
    drain, hubspot, _, _ = make([error_answer(503)] * 5, clock=clock, times=QueueTimes(max_receive_count=5))
    result = run(drain, [sqs_record(payment_body("ch_1"), "m1", receive_count=5)], clock=clock)
    assert len(hubspot.calls) == 6 and result.outcomes["m1"].state is State.CREATED


def test_a_payment_at_its_last_delivery_claims_again_when_the_ledger_failed_once():
    class FailsOnce(InMemoryLedger):
        calls = 0

        def claim(self, *args, **kwargs):
            self.calls += 1
            self.fail = self.calls == 1
            return super().claim(*args, **kwargs)

    clock = Clock()
    drain, _, _, _ = make(ledger=FailsOnce(), clock=clock, times=QueueTimes(max_receive_count=5))
    result = run(drain, [sqs_record(payment_body("ch_1"), "m1", receive_count=5)], clock=clock)
    assert result.outcomes["m1"].state is State.CREATED


def test_a_payment_sent_after_claiming_again_and_refused_by_hubspot_is_reported():
    """Before: only the first claim's payments were looked at for HubSpot's refusals, so one sent
    after claiming again left the queue rejected and without a report."""
    ledger = InMemoryLedger()
    clock = Clock()
    ledger.claim(["ch_1"], "other-invocation", int(time.time() * 1000) + 40_000)

    def other_one_gives_up(seconds):
        clock.now += seconds
        ledger.release(["ch_1"], "other-invocation")

    invalid = error_answer(400, "VALIDATION_ERROR", errors=[{"code": "INVALID_OPTION", "message": "x"}])
    drain, _, _, reporter = make([invalid], ledger=ledger, clock=clock)
    drain.sender.sleep = other_one_gives_up
    result = run(drain, [sqs_record(payment_body("ch_1"), "m1")], clock=clock)
    assert result.outcomes["m1"].state is State.REJECTED
    assert [r["messageId"] for r in reporter.sent] == ["m1"]


def test_a_payment_at_its_last_delivery_asks_the_rate_slots_again_when_the_table_failed_once():
    from payments_drain.adapters.rate_slots import RateSlotsUnavailable

    class FlakyGate(RateGate):
        failures = 1

        def delay(self):
            if self.failures:
                self.failures -= 1
                raise RateSlotsUnavailable("rate slots table: update_item failed (InternalServerError)")
            return super().delay()

    clock = Clock()
    drain, hubspot, _, _ = make(clock=clock, times=QueueTimes(max_receive_count=5))
    drain.sender.gate = FlakyGate(190, clock=clock)
    last = run(drain, [sqs_record(payment_body("ch_1"), "m1", receive_count=5)], clock=clock)
    assert last.outcomes["m1"].state is State.CREATED and len(hubspot.calls) == 1
    drain.sender.gate.failures = 1
    earlier = run(drain, [sqs_record(payment_body("ch_2"), "m2", receive_count=2)], clock=clock)
    assert earlier.outcomes["m2"].reason.category == "RATE_SLOTS_UNAVAILABLE"  # held, tried next delivery


def test_while_the_day_is_spent_a_payment_waiting_on_the_ledger_is_held_as_long_as_the_day():
    """The simulated week, seeds 91636 and 97141: a ledger error in the middle of a spent day took
    a 10-minute hold, and the day outlasted the deliveries left."""
    clock = Clock()
    daily = DailyLimit(300, clock=clock)
    daily.observe(429, {"policyName": "DAILY"}, {})
    drain, _, visibility, _ = make(ledger=InMemoryLedger(fail=True), clock=clock, daily=daily)
    run(drain, [sqs_record(payment_body("ch_1"), "m1", receive_count=2)], clock=clock)
    assert list(visibility.held.values()) == [7_200 * 2]


def test_a_ledger_record_that_fails_once_is_written_again_not_given_up():
    class FailsOnce(InMemoryLedger):
        failures = 1

        def record_created(self, created, versions=None, links_pending=()):
            from payments_drain.adapters.ledger import LedgerUnavailable

            if self.failures:
                self.failures -= 1
                raise LedgerUnavailable("ledger write failed (ProvisionedThroughputExceededException)")
            super().record_created(created, versions, links_pending)

    ledger = FailsOnce()
    drain, _, _, _ = make(ledger=ledger)
    result = run(drain, [sqs_record(payment_body("ch_1"), "m1")])
    assert not result.ledger_write_failed and ledger.items["ch_1"]["status"] == "created"


# -- the rate limit's timeline under contention ------------------------------------------------------
def _timeline_drain(faults=None, line_ms=None):
    """A drain whose gate claims on a slots table in SimDynamoDB (held to DynamoDB Local by
    tests/contract), with the test's clock as the wall clock."""
    import random

    from payments_drain.adapters.rate_slots import DynamoRateSlots
    from payments_drain.orchestration.pacing import SlotGate

    from simulation.dynamodb import SimDynamoDB, create_hash_table

    clock = Clock()
    base_ms = int(time.time() * 1000)

    class Wall:
        def wall(self):
            return base_ms / 1000 + clock.now

    ddb = SimDynamoDB(Wall(), random.Random(0), faults)
    create_hash_table(ddb, "slots", "name")
    if line_ms is not None:  # others took this window, and a line waits until then
        from payments_drain.adapters.rate_slots import KEY
        from payments_drain.core.slot_log import encode as _encode

        item = {**KEY, "log": {"S": _encode([base_ms] * 190)}, "queue": {"N": str(base_ms + line_ms)}}
        ddb.put_item(TableName="slots", Item=item)
    drain, hubspot, visibility, _ = make(clock=clock)
    gate = SlotGate(
        DynamoRateSlots("slots", 190, client=ddb),
        wall_ms=lambda: base_ms + round(clock.now * 1000),
        rng=random.Random(1),
    )
    drain.sender.gate = gate
    return drain, hubspot, visibility, clock


def test_a_claim_with_no_slot_before_the_budget_ends_is_held_until_its_ticket_not_an_outage():
    drain, hubspot, visibility, clock = _timeline_drain(line_ms=600_000)  # ten minutes of line
    result = run(drain, [sqs_record(payment_body("ch_1"), "m1")], clock=clock)
    outcome = result.outcomes["m1"]
    assert outcome.wait is Wait.NO_SLOT_YET and outcome.reason.category != "RATE_SLOTS_UNAVAILABLE"
    assert hubspot.calls == [] and result.response["batchItemFailures"] == [{"itemIdentifier": "m1"}]
    (held,) = visibility.held.values()  # back when its ticket comes up, 5 s early, not in 370 s
    assert 600 - 5 - 60 <= held <= 600 - 5


def test_a_throttled_claim_waits_and_is_held_briefly_never_reported_as_slots_unavailable():

    from simulation.dynamodb import DynamoFaults

    drain, hubspot, visibility, clock = _timeline_drain(DynamoFaults(p_throttle_request=1.0))
    result = run(drain, [sqs_record(payment_body("ch_1"), "m1")], clock=clock)
    outcome = result.outcomes["m1"]
    assert outcome.wait is Wait.NO_SLOT_YET and outcome.reason.category != "RATE_SLOTS_UNAVAILABLE"
    assert clock.now > 50  # it waited (claiming again every 0.5-2 s) for as long as it had time
    (held,) = visibility.held.values()  # (the test's clock runs clock.now ahead of the wall clock)
    assert hubspot.calls == [] and held <= clock.now + BUSY_S[1] + 1


# -- a lost answer read back (create mode, the unique property) ---------------------------------------
def _read_answer(key, amount, created_ms):
    """batch/read's 200 by the unique property: one record of ``key`` holding ``amount``."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created_ms / 1000)) + f".{created_ms % 1000:03d}Z"
    record = {
        "id": "501",
        "properties": {
            "payment_key": key,
            "hs_initial_amount": amount,
            "hs_initiated_date": "2026-11-27T10:00:00Z",
            "hs_currency_code": "EUR",
        },
        "createdAt": stamp,
        "updatedAt": stamp,
        "archived": False,
    }
    return Answer(200, {"status": "COMPLETE", "results": [record]})


def _read_back(amount, created_ms, sent_ms):
    (payment,) = [
        parse_record(sqs_record(payment_body("ch_1", amount="20.00"), "m2", sent_ms=sent_ms), "payment_key")
    ]
    read = read_of(_read_answer("ch_1", amount, created_ms), ["ch_1"], "payment_key")
    return applied([payment], read, "payment_key", upsert=False)["m2"]


def test_a_read_back_record_another_message_made_after_this_one_was_sent_is_a_duplicate():
    """Simulation seed 22: two messages of one payment (a corrected resend 0.5 s later) in two
    invocations; the resend's create reached HubSpot first, this message's was refused as a conflict
    and that answer lost. The record the resend made 1 s after this one was sent holds the resend's
    values: it is not this message's create (HubSpot's read gives no trace id), so this message is a
    duplicate of it, not a second 'created' for one record."""
    now = int(time.time() * 1000)
    other = _read_back("10.00", created_ms=now + 1_000, sent_ms=now)
    assert (other.state, other.reason.category, other.hubspot_id) == (
        State.DUPLICATE,
        "CREATED_BY_ANOTHER_MESSAGE",
        "501",
    )
    own = _read_back("20.0", created_ms=now + 1_000, sent_ms=now)  # HubSpot gives 20.00 back as 20.0
    assert (own.state, own.reason, own.hubspot_id) == (State.CREATED, None, "501")
    before = _read_back("20.00", created_ms=now - 1_000, sent_ms=now)
    assert (before.state, before.reason.category) == (State.DUPLICATE, "CREATED_BEFORE_SENT")


def test_a_read_back_property_sent_empty_and_held_without_a_value_is_this_messages_create():
    """HubSpot clears a property given an empty string ("Property values can be cleared by passing
    an empty string", its objects API reference) and reads it back without a value (null, or not
    at all): the record is this message's own create, not another message's. Before, a payment
    with ``hs_internal_comment: ""`` whose answer was lost was counted a duplicate
    (CREATED_BY_ANOTHER_MESSAGE) of its own record."""
    now = int(time.time() * 1000)
    (payment,) = [
        parse_record(
            sqs_record(payment_body("ch_1", amount="20.00", hs_internal_comment=""), "m2", sent_ms=now),
            "payment_key",
        )
    ]
    for held in ({"hs_internal_comment": None}, {}):  # null, or left out of the answer
        answer = _read_answer("ch_1", "20.00", now + 1_000)
        answer.body["results"][0]["properties"].update(held)
        read = read_of(answer, ["ch_1"], "payment_key")
        own = applied([payment], read, "payment_key", upsert=False)["m2"]
        assert (own.state, own.reason, own.hubspot_id) == (State.CREATED, None, "501")
    # a value where the message sent none is still another message's
    answer = _read_answer("ch_1", "20.00", now + 1_000)
    answer.body["results"][0]["properties"]["hs_internal_comment"] = "corrected"
    other = applied([payment], read_of(answer, ["ch_1"], "payment_key"), "payment_key", upsert=False)["m2"]
    assert (other.state, other.reason.category) == (State.DUPLICATE, "CREATED_BY_ANOTHER_MESSAGE")
