"""The pure core's settle, plan and response rules, with plain values."""

import pytest
from payments_drain.core import batching
from payments_drain.core.batching import Answer, failed_message_ids, plan_chunks, settle
from payments_drain.core.messages import parse_record
from payments_drain.core.outcomes import Message, Outcome, State, Wait

from tests.twins import created, error_answer, payment_body, sqs_record, validation_error


def payments(n, prefix="m"):
    return [parse_record(sqs_record(payment_body(f"k{i}", amount=str(i)), f"{prefix}{i}")) for i in range(n)]


def test_plan_chunks_of_at_most_100_with_unique_trace_ids():
    chunks = plan_chunks(payments(250))
    assert [len(c) for c in chunks] == [100, 100, 50]
    for chunk in chunks:
        ids = [p.hubspot_input()["objectWriteTraceId"] for p in chunk]
        assert len(set(ids)) == len(ids)


def test_201_creates_all_matched_by_trace_id_not_position():
    chunk = payments(5)
    answer = created([p.hubspot_input() for p in chunk])  # results come back reversed
    verdict = settle(chunk, answer)
    assert verdict.action == batching.SETTLED
    by_trace = {r["objectWriteTraceId"]: r["id"] for r in answer.body["results"]}
    for p in chunk:
        assert verdict.outcomes[p.message_id] == Outcome(State.CREATED, hubspot_id=by_trace[p.message_id])


def test_201_without_trace_id_echo_matches_results_by_properties():
    chunk = payments(3)
    answer = created([p.hubspot_input() for p in chunk])
    for result in answer.body["results"]:
        del result["objectWriteTraceId"]
    ids = {r["properties"]["hs_initial_amount"]: r["id"] for r in answer.body["results"]}
    verdict = settle(chunk, answer)
    assert {verdict.outcomes[p.message_id].hubspot_id for p in chunk} == set(ids.values())
    assert all(
        verdict.outcomes[p.message_id].hubspot_id == ids[p.properties["hs_initial_amount"]] for p in chunk
    )


def test_207_maps_each_error_by_trace_id():
    chunk = payments(4)
    errors = [
        validation_error("m2"),
        {
            "status": "error",
            "category": "INTERNAL",
            "message": "boom",
            "context": {"objectWriteTraceId": ["m0"]},
        },
    ]
    verdict = settle(chunk, created([p.hubspot_input() for p in chunk], 207, errors))
    states = {k: v.state for k, v in verdict.outcomes.items()}
    assert states == {"m0": State.RETRY, "m1": State.CREATED, "m2": State.REJECTED, "m3": State.CREATED}
    assert verdict.outcomes["m2"].reason.code == "INVALID_OPTION"
    assert not verdict.ambiguous


def test_207_with_an_unmappable_error_trusts_only_proven_results():
    chunk = payments(3)
    answer = created([p.hubspot_input() for p in chunk], 207, [validation_error("m1")])
    answer.body["errors"].append(
        {"status": "error", "category": "VALIDATION_ERROR", "message": "?", "context": {}}
    )
    answer.body["results"] = [r for r in answer.body["results"] if r["objectWriteTraceId"] != "m2"]
    verdict = settle(chunk, answer)
    assert verdict.outcomes["m0"].state is State.CREATED
    assert verdict.outcomes["m1"].state is State.REJECTED
    assert verdict.outcomes["m2"].state is State.RETRY
    assert verdict.ambiguous


def test_207_conflict_on_our_unique_property_is_a_duplicate_with_the_existing_id():
    chunk = payments(2)
    conflict = {
        "status": "error",
        "category": "CONFLICT",
        "message": "payment_key already exists. Existing ID: 777",
        "context": {"objectWriteTraceId": ["m1"]},
    }
    verdict = settle(
        chunk, created([p.hubspot_input() for p in chunk], 207, [conflict]), unique_property="payment_key"
    )
    assert verdict.outcomes["m1"] == Outcome(State.DUPLICATE, verdict.outcomes["m1"].reason, "777")
    without = settle(chunk, created([p.hubspot_input() for p in chunk], 207, [conflict]))
    assert without.outcomes["m1"].state is State.REJECTED


def test_207_unreadable_body_is_resent_only_where_a_resend_cannot_make_a_copy():
    unique = settle(payments(2), Answer(207, None), "payment_key")
    assert unique.action == batching.TRANSIENT and unique.ambiguous
    without = settle(payments(2), Answer(207, None))  # a resend could create copies: retried, marked
    assert without.action == batching.SETTLED and without.ambiguous
    assert {o.state for o in without.outcomes.values()} == {State.RETRY}


def test_201_unreadable_body_without_unique_property_is_taken_at_its_documented_word():
    verdict = settle(payments(2), Answer(201, "<html>"))
    assert {o.state for o in verdict.outcomes.values()} == {State.CREATED}
    assert verdict.reason.category == "HUBSPOT_UNREADABLE_ANSWER"


def test_whole_400_splits_a_chunk_and_rejects_a_single_input():
    answer = error_answer(400, "VALIDATION_ERROR", errors=[{"code": "PROPERTY_DOESNT_EXIST", "message": "x"}])
    assert settle(payments(2), answer).action == batching.SPLIT
    single = settle(payments(1), answer)
    assert single.outcomes["m0"].state is State.REJECTED
    assert single.outcomes["m0"].reason.code == "PROPERTY_DOESNT_EXIST"
    assert single.outcomes["m0"].reason.hubspot_correlation_id == "corr-1"


def missing_property(name: str, trace_id: str | None = None, form: str = "in") -> dict:
    """HubSpot's error for a property that does not exist, naming it in ``in`` or in
    ``context.propertyName`` (docs/hubspot.md); per input when ``trace_id`` is given."""
    detail = {"message": f'Property "{name}" does not exist', "code": "PROPERTY_DOESNT_EXIST"}
    detail.update({"in": name} if form == "in" else {"context": {"propertyName": [name]}})
    error = {"status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid"}
    return {**error, "errors": [detail], "context": {"objectWriteTraceId": [trace_id]} if trace_id else {}}


@pytest.mark.parametrize("form", ["in", "context"])
def test_our_unique_property_missing_holds_every_input_as_a_configuration_fault(form):
    chunk = payments(3)
    errors = [missing_property("payments_drain_key", p.message_id, form) for p in chunk]
    verdict = settle(chunk, created([p.hubspot_input() for p in chunk], 207, errors), "payments_drain_key")
    assert {o.state for o in verdict.outcomes.values()} == {State.RETRY}
    assert {o.wait for o in verdict.outcomes.values()} == {Wait.CONFIGURATION}
    reason = verdict.outcomes["m0"].reason
    assert (reason.category, reason.code) == ("UNIQUE_PROPERTY_MISSING", "PROPERTY_DOESNT_EXIST")
    assert "payments_drain_key" in reason.message and "make setup-hubspot" in reason.message


def test_a_missing_property_of_the_producers_own_is_still_the_payments_fault():
    chunk = payments(2)
    answer = created([p.hubspot_input() for p in chunk], 207, [missing_property("loyalty_tier", "m1")])
    verdict = settle(chunk, answer, "payments_drain_key")
    assert verdict.outcomes["m1"].state is State.REJECTED and verdict.outcomes["m0"].state is State.CREATED
    without = settle(chunk, created([p.hubspot_input() for p in chunk], 207, [missing_property("x", "m1")]))
    assert without.outcomes["m1"].state is State.REJECTED  # no unique property configured: nothing to hold


def test_a_whole_400_naming_our_missing_unique_property_is_held_not_split():
    body = missing_property("payments_drain_key")
    answer = error_answer(400, "VALIDATION_ERROR", errors=body["errors"])
    verdict = settle(payments(4), answer, "payments_drain_key")
    assert verdict.action == batching.SETTLED
    assert {(o.state, o.wait) for o in verdict.outcomes.values()} == {(State.RETRY, Wait.CONFIGURATION)}
    assert verdict.reason.hubspot_correlation_id == "corr-1"


@pytest.mark.parametrize(
    ("answer", "action", "wait", "ambiguous"),
    [
        (error_answer(401, "INVALID_AUTHENTICATION"), batching.REFRESH, 0, False),
        (error_answer(429, policyName="TEN_SECONDLY_ROLLING"), batching.TRANSIENT, 1.0, False),
        (
            error_answer(429, headers={"Retry-After": "3"}, policyName="TEN_SECONDLY_ROLLING"),
            batching.TRANSIENT,
            3.0,
            False,
        ),
        (error_answer(429, policyName="DAILY"), batching.STOP, 0, False),
        (error_answer(423), batching.TRANSIENT, 2.0, False),
        (error_answer(477, headers={"Retry-After": "7"}), batching.TRANSIENT, 7.0, False),
        (error_answer(500), batching.TRANSIENT, 0.5, True),
        (error_answer(503), batching.TRANSIENT, 0.5, True),
        (Answer(None, error="connect"), batching.TRANSIENT, 0.5, False),
        (Answer(None, error="timeout"), batching.TRANSIENT, 0.5, True),
        (Answer(None, error="protocol"), batching.TRANSIENT, 0.5, True),
    ],
)
def test_whole_request_failures(answer, action, wait, ambiguous):
    verdict = settle(payments(3), answer)
    assert (verdict.action, verdict.wait_s, verdict.ambiguous) == (action, wait, ambiguous)


@pytest.mark.parametrize("status", [403, 404])
def test_configuration_faults_retry_every_payment(status):
    verdict = settle(payments(3), error_answer(status, "MISSING_SCOPES"))
    assert verdict.action == batching.SETTLED
    assert {o.state for o in verdict.outcomes.values()} == {State.RETRY}
    assert verdict.reason.http_status == status


@pytest.mark.parametrize("n", [1, 3])
def test_an_unknown_object_type_400_is_a_configuration_fault_never_split_nor_rejected(n):
    answer = error_answer(
        400, "VALIDATION_ERROR", message="Unable to infer object type from: commerce_payment"
    )
    verdict = settle(payments(n), answer)
    assert verdict.action == batching.SETTLED
    assert {o.state for o in verdict.outcomes.values()} == {State.RETRY} and len(verdict.outcomes) == n
    assert verdict.reason.http_status == 400 and "commerce_payment" in verdict.reason.message


def m(mid, group=None):
    return Message(mid, "{}", 1, group)


def test_failed_ids_are_the_retries_in_batch_order_and_missing_outcomes_retry():
    messages = [m("a"), m("b"), m("c"), m("d")]
    outcomes = {"a": Outcome(State.CREATED), "b": Outcome(State.RETRY), "c": Outcome(State.REJECTED)}
    assert failed_message_ids(messages, outcomes) == ["b", "d"]


def test_fifo_a_retry_blocks_every_later_message_of_its_group_only():
    messages = [m("a", "g1"), m("b", "g2"), m("c", "g1"), m("d", "g2"), m("e", "g1")]
    outcomes = {k: Outcome(State.CREATED) for k in "abcde"}
    outcomes["c"] = Outcome(State.RETRY)
    assert failed_message_ids(messages, outcomes) == ["c", "e"]


def test_batch_response_shape():
    assert batching.batch_response(["x"]) == {"batchItemFailures": [{"itemIdentifier": "x"}]}
    assert batching.batch_response([]) == {"batchItemFailures": []}


# -- settled by the body, not only by the status (docs/hubspot.md) ------------------------------


def test_a_201_with_errors_is_settled_like_a_207():
    """HubSpot's 2026-09 batch create declares only 201, whose body carries errors/numErrors."""
    chunk = payments(3)
    answer = created([p.hubspot_input() for p in chunk], 201, [validation_error("m1")])
    verdict = settle(chunk, answer)
    assert verdict.action == batching.SETTLED
    assert {k: v.state for k, v in verdict.outcomes.items()} == {
        "m0": State.CREATED,
        "m1": State.REJECTED,
        "m2": State.CREATED,
    }
    assert verdict.outcomes["m1"].reason.http_status == 201
    assert batching.unexpected_shape(answer) is None


@pytest.mark.parametrize("status", [200, 201, 202])
@pytest.mark.parametrize("body", [None, "<html>ok</html>", {"status": "COMPLETE"}, {"results": "?"}])
def test_a_2xx_whose_results_cannot_be_read_still_means_created(status, body):
    """Never resend what HubSpot said it stored; the odd shape is named for a log line."""
    chunk = payments(3)
    verdict = settle(chunk, Answer(status, body))
    assert verdict.action == batching.SETTLED and not verdict.ambiguous
    assert {o.state for o in verdict.outcomes.values()} == {State.CREATED}
    assert batching.unexpected_shape(Answer(status, body)) == "results cannot be read"


def test_a_200_where_201_is_documented_means_created_with_the_ids():
    chunk = payments(2)
    answer = created([p.hubspot_input() for p in chunk], 200)
    verdict = settle(chunk, answer)
    by_trace = {r["objectWriteTraceId"]: r["id"] for r in answer.body["results"]}
    assert {k: o.hubspot_id for k, o in verdict.outcomes.items()} == by_trace
    assert batching.unexpected_shape(answer) is None


def test_another_2xx_status_is_created_and_named_unexpected():
    chunk = payments(2)
    answer = created([p.hubspot_input() for p in chunk], 202)
    assert {o.state for o in settle(chunk, answer).outcomes.values()} == {State.CREATED}
    assert batching.unexpected_shape(answer) == "status 202"


@pytest.mark.parametrize("errors", [None, "3 errors", [], [{"status": "error"}]])
def test_a_2xx_counting_errors_it_does_not_list_is_ambiguous_not_created(errors):
    """numErrors > 0 but no readable errors[]: some inputs failed, we cannot tell which."""
    chunk = payments(3)
    answer = created([p.hubspot_input() for p in chunk], 201)
    answer.body["numErrors"] = 1
    if errors is not None:
        answer.body["errors"] = errors
    verdict = settle(chunk, answer)
    assert State.CREATED not in {o.state for o in verdict.outcomes.values()} or verdict.ambiguous
    assert verdict.ambiguous
    assert batching.unexpected_shape(answer) is not None


def test_a_documented_201_has_no_unexpected_shape():
    chunk = payments(2)
    assert batching.unexpected_shape(created([p.hubspot_input() for p in chunk])) is None
    assert batching.unexpected_shape(error_answer(503)) is None
